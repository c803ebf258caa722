import type { BinarySource, StepOf } from '../../planner/types.js'
import type { Check, ActionProgram } from '../program.js'
import { literal, nodeCheck, OFF_NODE, onNode, q, script, SUMS } from './commands.js'

/**
 * Keeping files before they change (issue 11 item 1): copies under `<dir>/files` with their full paths, and a
 * checksum list `<dir>/SHA256SUMS` that every later use (verify, restore) checks first, so a damaged or partial
 * backup is never restored. `versionOf` optionally names a binary among the paths whose copy must report the version
 * the node is leaving: a backup taken after the binary already changed would be worthless, and verify says so.
 */
export function backupFilesProgram(step: StepOf<'backup-files'>, versionOf?: { argv: (copy: string) => string[]; expect: string }): ActionProgram {
  const { dir, paths } = step.params
  const sums = `${dir}/${SUMS}`
  const verify: Check[] = [nodeCheck(['sha256sum', '--check', '--quiet', '--strict', sums], `the backup in ${dir} matches its checksums`, { exitCode: 0 }, { privileged: true, okExitCodes: [0, 1] })]
  // The copies are root's alone (umask 077 below): a login other than root may not even enter the folder to run one.
  if (versionOf) verify.push(nodeCheck(versionOf.argv(`${dir}/files`), `the kept copy is ${versionOf.expect}`, { stdoutMatches: literal(versionOf.expect) }, { privileged: true, okExitCodes: [0, 1, 2, 126, 127] }))
  const copy = script(
    [
      'set -e',
      // Config and PKI copies are root's alone.
      'umask 077',
      // An earlier run's copies go first, its list before them: a copy cut off halfway must not verify against that
      // list, and files merged into an earlier copy would put back what the node no longer has.
      `rm -f ${q(sums)} ${q(`${sums}.new`)}`,
      `rm -rf ${q(`${dir}/files`)}`,
      `mkdir -p ${q(`${dir}/files`)}`,
      // --parents keeps the full path under files/, so a restore knows where each copy belongs. A path the node
      // does not have is listed in ABSENT instead (a restore then knows it did not exist, rather than guessing).
      `: > ${q(`${dir}/ABSENT`)}`,
      // (From /, with relative paths: coreutils 9.1's `cp -a --parents /abs/path` fails to copy the parents' attributes.)
      `for p in ${paths.map(q).join(' ')}; do if [ -e "$p" ]; then (cd / && cp -a --parents "\${p#/}" ${q(`${dir}/files`)}); else printf '%s\\n' "$p" >> ${q(`${dir}/ABSENT`)}; fi; done`,
      `find ${q(`${dir}/files`)} -type f -exec sha256sum {} + | LC_ALL=C sort -k 2 > ${q(`${sums}.new`)}`,
      `mv -f ${q(`${sums}.new`)} ${q(sums)}`,
    ],
    `keep ${paths.join(', ')} with sha256 checksums in ${dir}`,
  )
  // A control-plane node's kept files are what its restore puts back beside the snapshot (the binary that can read it,
  // the unit, /etc/kubernetes): they are copied off the node with it. A worker's rollback needs no snapshot.
  const offNode = step.role === 'control-plane'
  return {
    title: `keep ${paths.join(', ')} with checksums in ${dir}${offNode ? `; copied off the node to ${OFF_NODE}` : ''}`,
    verify,
    run: [copy],
    ...(offNode ? { offNode: { sums: [sums] } } : {}),
  }
}

/**
 * Puts files kept by `backup-files` back in place, after checking their checksums. A path that did not exist when
 * the backup was taken (listed in ABSENT) is left as it is now, and says so; a path with neither is an error.
 */
export function restoreFilesProgram(step: StepOf<'restore-files'>): ActionProgram {
  const { dir, paths } = step.params
  return { title: `restore ${paths.join(', ')} from ${dir}`, verify: [], run: restoreFilesCommands(step.params) }
}

/** The commands of restoreFilesProgram, for a program that puts files back among its other commands. */
export function restoreFilesCommands({ dir, paths }: { dir: string; paths: readonly string[] }): ReturnType<typeof onNode>[] {
  return [
    onNode(['sha256sum', '--check', '--quiet', '--strict', `${dir}/${SUMS}`], `check the backup in ${dir} before restoring it`),
    script(putBackLines(dir, paths), `restore ${paths.join(', ')} from ${dir}`),
  ]
}

/** Shell lines that put each path's kept copy back (its checksums already checked); a path ABSENT before is left. */
export function putBackLines(dir: string, paths: readonly string[]): string[] {
  return [
    `for p in ${paths.map(q).join(' ')}; do`,
    `  if [ -e ${q(`${dir}/files`)}"$p" ]; then cp -a -- ${q(`${dir}/files`)}"$p" "\${p%/*}/"`,
    `  elif grep -qxF -- "$p" ${q(`${dir}/ABSENT`)}; then echo "kupgrade: $p did not exist before the upgrade; left as it is" >&2`,
    `  else echo "kupgrade: no kept copy of $p in ${dir.replace(/[^A-Za-z0-9/+._-]/g, '')}" >&2; exit 1; fi`,
    'done',
  ]
}


/** The kept copy of a file inside a backup directory. */
export const keptCopy = (dir: string, path: string): string => `${dir}/files${path}`

/** A release binary of one machine architecture (`arch`, Kubernetes' name): the `uname -m` values it is for (a shell
 *  case pattern), its asset's name in the release and the checksum file that lists it. */
export interface ArchAsset {
  arch: string
  machines: string
  asset: string
  sums: string
  /** The release's images archive for this architecture, without its extension (k3s-airgap-images-arm64), where the
   *  distribution ships one for air-gapped nodes. */
  images?: string
}

/**
 * Where a distribution loads its images from archives at start (air-gapped nodes: k3s's agent/images), which archives
 * are the release's own (`prefix`: the node's other archives are left alone), the extensions the release publishes
 * them in (the first the source has is taken), and where the node's old archive is kept for the way back.
 */
export interface ReleaseImages {
  dir: string
  prefix: string
  extensions: readonly string[]
  kept: string
}

/** The fetch's title where the node's architecture is known (live facts): the one asset it gets there. */
export function assetTitle(tool: string, release: string, base: string, assets: readonly ArchAsset[], arch: string | undefined, images?: ReleaseImages): string | undefined {
  const a = arch === undefined ? undefined : assets.find((x) => x.arch === arch)
  return a && `install ${tool} ${release} from ${base}/${a.asset} (${arch}), checked against ${base}/${a.sums}${images && a.images ? imagesTitle(images, a.images) : ''}`
}

/** What the title says about the images archive (`stem`: its name without the extension, or a pattern of the names). */
export function imagesTitle(images: ReleaseImages, stem: string): string {
  const [first, ...others] = images.extensions
  return `; where the node loads its images from ${images.dir}/${images.prefix}* (air-gapped), the release's ${stem}${first}${others.length ? ` (or ${others.join(', ')})` : ''} from there too, checked the same way, the old one kept in ${images.kept}`
}

/** The shell command that copies the file named by the shell word `name` from a mirror (URL) or a directory into `to`. */
const fetchFile = (fetch: 'url' | 'path', base: string, name: string, to: string): string =>
  fetch === 'url' ? `curl -sSfL -o ${to} ${q(`${base}/`)}${name}` : `cp -- ${q(`${base}/`)}${name} ${to}`

/** How one release is fetched and its folder: at a mirror (its name URL-encoded: `+` in a path is a space to some
 *  servers), or on the node. */
export const releaseFolder = (source: Exclude<BinarySource, { kind: 'installer' }>, release: string): Pick<ReleaseFiles, 'fetch' | 'base'> =>
  source.kind === 'mirror'
    ? { fetch: 'url', base: `${source.base.replace(/\/+$/, '')}/${encodeURIComponent(release)}` }
    : { fetch: 'path', base: `${source.dir.replace(/\/+$/, '')}/${release}` }

/** Where a release's files come from, for the fetch and for the check before the run (`base`: the release's folder). */
export interface ReleaseFiles {
  fetch: 'url' | 'path'
  base: string
  assets: readonly ArchAsset[]
  tool: string
  release: string
  images?: ReleaseImages
}

/**
 * The lines that pick this machine's asset from `uname -m`, as the distribution's own installer does, into the shell
 * variables `asset`, `sums`, `listed` (the checksum line's pattern) and, where the release ships one, `images`; and a
 * temporary folder `$tmp`, gone at exit.
 */
function archLines(a: ReleaseFiles): string[] {
  return [
    'case "$(uname -m)" in',
    // The release's checksum file may list every asset; only ours is checked, and it must be listed.
    ...a.assets.map((x) => `  ${x.machines}) asset=${q(x.asset)} sums=${q(x.sums)} listed=${q(`[[:space:]][*]?${literal(x.asset)}$`)}${a.images && x.images ? ` images=${q(x.images)}` : ''} ;;`),
    `  *) echo ${q(`kupgrade: ${a.tool} ${a.release} has no binary for the architecture of this machine:`)} "$(uname -m)" >&2; exit 1 ;;`,
    'esac',
    'tmp=$(mktemp -d)',
    `trap 'rm -rf "$tmp"' EXIT`,
  ]
}

/** The error for a file of the release the source lacks (`name`: the shell variable holding its name). */
const missingLine = (a: ReleaseFiles, name: string): string => `{ echo "kupgrade: cannot get $${name} (${a.tool} ${a.release} for $(uname -m)) from "${q(`${a.base}/`)} >&2; exit 1; }`
const notListedLine = (a: ReleaseFiles, file: string): string => `{ echo "kupgrade: ${file} is not listed in $sums of "${q(a.release)} >&2; exit 1; }`

/**
 * Installs a release binary fetched from a mirror (URL) or a node-local directory (`base`) laid out like the GitHub
 * release, checking it against the release's checksum file before it replaces anything. The asset is the one for the
 * node's architecture, chosen from `uname -m` on the node as the distribution's own installer chooses it: a binary
 * built for another architecture passes its checksum and then does not run. The new file is written beside the
 * binary and renamed over it: a running executable cannot be overwritten in place (ETXTBSY), but it can be replaced.
 */
export function fetchVerifiedBinaryScript(a: ReleaseFiles & { binary: string }): string[] {
  // A mirror or directory that lacks this architecture's files fails here, before anything is replaced: say which.
  const get = (name: string): string => `${fetchFile(a.fetch, a.base, `"$${name}"`, `"$tmp/$${name}"`)} || ${missingLine(a, name)}`
  return [
    'set -e',
    ...archLines(a),
    get('asset'),
    get('sums'),
    `grep -E "$listed" "$tmp/$sums" > "$tmp/want" || ${notListedLine(a, '$asset')}`,
    '(cd "$tmp" && sha256sum --check --strict want)',
    ...(a.images ? imagesLines(a, a.images) : []),
    `install -m 0755 "$tmp/$asset" ${q(`${a.binary}.kupgrade-new`)}`,
    `mv -f ${q(`${a.binary}.kupgrade-new`)} ${q(a.binary)}`,
  ]
}

/**
 * Read-only, before a run changes anything: can this node get what its fetch will need, for its architecture? The
 * checksum list is read whole (it is small) and must list the asset; the asset (and, on a node that loads its images
 * from archives, the images archive in one of its formats) must be there, read one byte of from a mirror or found
 * readable in the folder. `checksums: false`: the
 * installer fetches the binary without a list (get.k0s.sh). `installer`: the install script's URL, read the same way.
 * The messages are the fetch's own, so the check says what the run would have said, node by node, before the first.
 * Prints `found <file>` for each file found.
 */
export function releaseSourceCheckScript(a: ReleaseFiles & { checksums: boolean; installer?: string }): string[] {
  // One byte of a file at a URL: a ranged GET (a HEAD is refused by some mirrors' signed redirects).
  const byte = (url: string): string => `curl -sSfL -r 0-0 -o /dev/null ${url}`
  const probe = (name: string): string => (a.fetch === 'url' ? byte(`${q(`${a.base}/`)}${name}`) : `[ -f ${q(`${a.base}/`)}${name} ] && [ -r ${q(`${a.base}/`)}${name} ]`)
  const found = (name: string): string => `echo "found "${q(`${a.base}/`)}${name}`
  return [
    'set -e',
    ...(a.installer ? [`${byte(q(a.installer))} || { echo ${q(`kupgrade: cannot get the install script ${a.installer}`)} >&2; exit 1; }`, `echo found ${q(a.installer)}`] : []),
    ...archLines(a),
    `${probe('"$asset"')} || ${missingLine(a, 'asset')}`,
    found('"$asset"'),
    ...(a.checksums
      ? [
          `${fetchFile(a.fetch, a.base, '"$sums"', '"$tmp/$sums"')} || ${missingLine(a, 'sums')}`,
          `grep -qE "$listed" "$tmp/$sums" || ${notListedLine(a, '$asset')}`,
          found('"$sums"'),
        ]
      : []),
    ...(a.images ? imagesCheckLines(a, a.images, probe, found) : []),
  ]
}

/** Whether the node loads its images from the release's archives (or kept its old one in an earlier try of the hop). */
const loadsArchives = (i: ReleaseImages): string => `[ -n "\${images:-}" ] && { ls -d ${q(i.dir)}/${q(i.prefix)}* || ls -d ${q(i.kept)}/${q(i.prefix)}*; } >/dev/null 2>&1`

const noImagesLine = (a: ReleaseFiles, i: ReleaseImages): string =>
  `{ echo "kupgrade: this node loads the ${a.tool} images from archives in "${q(i.dir)}" (air-gapped), and "${q(`${a.base}/`)}" has no $images${i.extensions.join(', ')} (${a.tool} ${a.release} for $(uname -m)): put the images archive of the release there, listed in $sums, then resume" >&2; exit 1; }`

/**
 * The first format of the release's images archive that `get` gets from the source (its name into `$img`) and its
 * checksum from the list (into `$want`), or the error: the fetch's and the check's alike.
 */
function findImagesLines(a: ReleaseFiles, i: ReleaseImages, get: (name: string) => string): string[] {
  return [
    `for ext in ${i.extensions.map(q).join(' ')}; do if ${get('"$images$ext"')} 2>/dev/null; then img=$images$ext; break; fi; done`,
    `[ -n "$img" ] || ${noImagesLine(a, i)}`,
    `want=$(awk -v f="$img" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/$sums")`,
    `[ -n "$want" ] || ${notListedLine(a, '$img')}`,
  ]
}

/** The images archive's share of the check: one of its formats at the source, listed in the checksum list. */
function imagesCheckLines(a: ReleaseFiles, i: ReleaseImages, probe: (name: string) => string, found: (name: string) => string): string[] {
  return ['img=""', `if ${loadsArchives(i)}; then`, ...findImagesLines(a, i, probe).map((l) => `  ${l}`), `  ${found('"$img"')}`, 'fi']
}

/**
 * The release's images archive beside its binary, on a node that loads its images from archives (k3s's air-gap upgrade:
 * the new release's archive in agent/images, the old one out, the binary replaced, the service restarted). Without
 * it the new release's system images cannot be pulled on an air-gapped node. A node without such archives pulls from
 * a registry and gets none. The archive (hundreds of megabytes: more than /tmp may hold) is fetched into a folder
 * beside the images folder, not into it: k3s imports every file there whatever its name, at start and as it changes.
 * It is checked against the same checksum list and renamed into place before the binary: so a binary at the release
 * means the images are in place too, and verify needs to read only the binary. A node whose old archive was already
 * kept (an earlier try of this hop) counts as loading archives, and its kept archive is not overwritten by a new one.
 */
function imagesLines(a: ReleaseFiles, i: ReleaseImages): string[] {
  const dir = q(i.dir)
  const kept = q(i.kept)
  const ours = `${dir}/${q(i.prefix)}*`
  return [
    'img=""',
    `if ${loadsArchives(i)}; then`,
    `  new=${q(`${i.dir}.kupgrade-new`)}`,
    // A fetch that fails or does not check out leaves no half of an archive of hundreds of megabytes behind.
    `  trap 'rm -rf "$tmp" "$new"' EXIT`,
    `  rm -rf "$new" && mkdir -p "$new" ${dir}`,
    ...findImagesLines(a, i, (name) => fetchFile(a.fetch, a.base, name, `"$new/"${name}`)).map((l) => `  ${l}`),
    `  [ "$(sha256sum < "$new/$img" | cut -d' ' -f1)" = "$want" ] || { echo "kupgrade: $img from "${q(`${a.base}/`)}" does NOT match its checksum in $sums" >&2; exit 1; }`,
    ...keepArchivesLines(i).map((l) => `  ${l}`),
    `  mv -f "$new/$img" ${dir}/"$img"`,
    'fi',
  ]
}

/**
 * The node's release archives out of the images folder into `kept` (for the way back, and so that the node still
 * counts as loading archives), unless an earlier try of the hop already kept the old ones there: then what is in the
 * folder is newer and simply goes.
 */
export function keepArchivesLines(i: ReleaseImages): string[] {
  const ours = `${q(i.dir)}/${q(i.prefix)}*`
  return [`mkdir -p ${q(i.kept)}`, `if [ -z "$(ls -A ${q(i.kept)})" ]; then for f in ${ours}; do [ -e "$f" ] && mv -f -- "$f" ${q(i.kept)}/; done; else rm -f ${ours}; fi`]
}

/** Shell lines that put the node's kept images archive back (an undo, before its binary goes back), where one was kept. */
export function keptImagesBackLines(i: ReleaseImages): string[] {
  return [
    `if [ -n "$(ls -A ${q(i.kept)} 2>/dev/null)" ]; then`,
    `  rm -f ${q(i.dir)}/${q(i.prefix)}*`,
    `  for f in ${q(i.kept)}/*; do mv -f -- "$f" ${q(`${i.dir}/`)}; done`,
    'fi',
  ]
}

/** Restores a kept binary (checksums first), replacing the running one by rename. */
export function restoreBinaryCommands(p: { backup: string; binary: string; dir: string; first?: readonly string[] }): ReturnType<typeof onNode>[] {
  return [
    onNode(['sha256sum', '--check', '--quiet', '--strict', `${p.dir}/${SUMS}`], `check the kept binary in ${p.dir} before restoring it`),
    script(
      // `first`: what goes back with the binary, before it (verify reads only the binary).
      ['set -e', ...(p.first ?? []), `install -m 0755 ${q(p.backup)} ${q(`${p.binary}.kupgrade-new`)}`, `mv -f ${q(`${p.binary}.kupgrade-new`)} ${q(p.binary)}`],
      `put the kept binary ${p.backup} back as ${p.binary}`,
    ),
  ]
}

/**
 * Shell lines that put the kept binary back only where the node kept one (checked first): a control-plane node the hop
 * moved has its copy; one it never reached still runs the old binary. `isRelease` is a shell test that the binary in
 * place is the release; the lines fail, saying so, when it is not.
 */
export function keptBinaryBackIfKeptLines(p: { backup: string; binary: string; dir: string; isRelease: string; what: string }): string[] {
  return [
    `if [ -f ${q(p.backup)} ]; then`,
    `  (cd ${q(p.dir)} && sha256sum --check --quiet --strict ${SUMS})`,
    `  install -m 0755 ${q(p.backup)} ${q(`${p.binary}.kupgrade-new`)}`,
    `  mv -f ${q(`${p.binary}.kupgrade-new`)} ${q(p.binary)}`,
    'fi',
    `${p.isRelease} || { echo ${q(`kupgrade: ${p.binary} is not ${p.what} and no kept copy is in ${p.dir}`)} >&2; exit 1; }`,
  ]
}

/**
 * Shell words for the newest file matching `glob` (in the current directory) and for the first file a sha256sum list
 * names: a backup's list names the one archive or snapshot it vouches for, and the restore reads exactly that one.
 */
export const newestFile = (glob: string): string => `"$(ls -1t ${glob} | head -n 1)"`
export const firstListedFile = (sums: string): string => `"$(awk 'NR == 1 { sub(/^\\*/, "", $2); print $2 }' ${q(sums)})"`
