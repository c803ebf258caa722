#!/usr/bin/env node
// `npm run build`, after tsc: bundles the compiled CLI (dist/cli/main.js and everything it imports) into dist/bundle/,
// which bin/kupgrade.js runs. Every command still loads lazily (one chunk per command), but a command's modules come
// from a few files instead of a few hundred: zod alone is ~100 ESM modules (64 of them locales kupgrade never uses),
// and linking them cost a 2,000-node `kupgrade plan` about a tenth of its time. dist/ keeps the unbundled modules:
// tests and benchmarks import them, and the bundle points back at them for paths (below).
import { rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const outdir = join(dist, 'bundle')

/**
 * A bundled module's `import.meta.url` would be its chunk's, in dist/bundle/. Modules that find files next to
 * themselves (the lab's stand-ins, its helper processes, package.json) get the URL of their own compiled file in dist/
 * instead, which ships beside the bundle: paths mean what they mean unbundled.
 */
const ownUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.m?js$/ }, async (args) => {
      if (!args.path.startsWith(`${dist}/`)) return undefined
      const text = await readFile(args.path, 'utf8')
      if (!text.includes('import.meta.url')) return undefined
      const own = `new URL(${JSON.stringify(`../${relative(dist, args.path)}`)}, import.meta.url).href`
      return { contents: text.replaceAll('import.meta.url', own), loader: 'js' }
    })
  },
}

/**
 * zod's `z` namespace re-exports all 64 of its locales (`z.locales`), half the bytes of the zod chunk every command
 * parses at start. kupgrade writes its own messages and uses zod's English only as zod itself sets it (classic/schemas
 * imports locales/en.js directly), so `z.locales` is bundled with English alone.
 */
const englishOnlyZodLocales = {
  name: 'english-only-zod-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[/\\]node_modules[/\\]zod[/\\]/.test(args.importer) ? { path: join(dirname(args.importer), '../locales/en.js'), namespace: 'zod-locales' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)}`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }))
  },
}

// Chunk names carry a content hash: a rebuild must not leave the last build's chunks behind.
rmSync(outdir, { recursive: true, force: true })
await build({
  entryPoints: [join(dist, 'cli/main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Bundled: what every command loads (zod, js-yaml, commander, semver). Left to node_modules: ssh2 (native bindings)
  // and the packages only fleet commands load, each a handful of modules.
  external: ['ssh2', 'cpu-features', 'execa', 'listr2', 'ssh-config', 'yaml', 'zx'],
  // commander and semver are CommonJS and require node's modules; an ES module has no `require` of its own.
  banner: { js: "import { createRequire as __kupgradeCreateRequire } from 'node:module'; const require = __kupgradeCreateRequire(import.meta.url);" },
  plugins: [ownUrl, englishOnlyZodLocales],
  logLevel: 'warning',
})
