import type { NodeArch, NodeOs } from './types.js'

/** /etc/os-release as each distribution ships it (facts §7 lists where kupgrade reads the OS; these are the
 *  distributions' own files, trimmed of URLs that nothing parses). */
const TEXT: Record<NodeOs, string> = {
  'ubuntu-22.04': `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`,
  'debian-12': `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`,
  'rocky-9': `NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
`,
  flatcar: `NAME="Flatcar Container Linux by Kinvolk"
ID=flatcar
ID_LIKE=coreos
VERSION=3815.2.5
VERSION_ID=3815.2.5
BUILD_ID=2024-07-01-2053
SYSEXT_LEVEL=1.0
PRETTY_NAME="Flatcar Container Linux by Kinvolk 3815.2.5 (Oklo)"
ANSI_COLOR="38;5;75"
HOME_URL="https://flatcar.org/"
`,
}

export const osReleaseText = (os: NodeOs): string => TEXT[os]

/** The kernel `uname -r` reports before any OS update, and the one an update (plus reboot) moves it to, on x86_64. */
const KERNELS: Record<NodeOs, [string, string]> = {
  'ubuntu-22.04': ['5.15.0-105-generic', '5.15.0-119-generic'],
  'debian-12': ['6.1.0-21-amd64', '6.1.0-25-amd64'],
  'rocky-9': ['5.14.0-427.13.1.el9_4.x86_64', '5.14.0-427.31.1.el9_4.x86_64'],
  flatcar: ['6.1.96-flatcar', '6.6.44-flatcar'],
}

/** The node's kernels (KERNELS) on its architecture: Debian names its kernel flavours by architecture (amd64, arm64,
 *  armmp), RHEL-likes end the release with the machine (x86_64, aarch64); Ubuntu's generic and Flatcar's do not say. */
export function kernelsOf(os: NodeOs, arch: NodeArch = 'amd64'): [string, string] {
  const [before, after] = KERNELS[os]
  if (os === 'debian-12') return [before, after].map((k) => k.replace(/-amd64$/, `-${debianFlavour(arch)}`)) as [string, string]
  if (os === 'rocky-9') return [before, after].map((k) => k.replace(/\.x86_64$/, `.${arch === 'arm64' ? 'aarch64' : arch === 'arm' ? 'armv7hl' : 'x86_64'}`)) as [string, string]
  return [before, after]
}

/** Debian's kernel flavour (and its linux-image-FLAVOUR metapackage) per architecture. */
export const debianFlavour = (arch: NodeArch): string => (arch === 'arm' ? 'armmp' : arch)

/** Flatcar release an update_engine update stages (the OS version itself changes on Flatcar). */
export const FLATCAR_NEXT = '3975.2.0'
