/*
 * kupgrade lab: enter a node. Does what `unshare -m --propagation private` (or `-Urm`), `mount --fstab FSTAB -a` and
 * `exec bash -c COMMAND` did as four programs, in one: every SSH exec on a lab node starts here, and on a small VM each
 * program started costs milliseconds (measured: 27 ms per exec through unshare, bash and mount; 11 ms through this).
 *
 *   lab-enter [--user-ns] [--nice N] FSTAB COMMAND [IF_EXISTS SCRIPT]
 *
 * - a private mount namespace (with --user-ns inside a user namespace mapping the caller to root, as `unshare -Urm`);
 * - FSTAB's entries mounted in order, as `mount -a` does for the two kinds the lab writes (namespace.ts fstabFor):
 *   `bind` (MS_BIND) and a filesystem type with options (overlay `ro,lowerdir=…`);
 * - then, if the file IF_EXISTS exists, `bash -c SCRIPT lab-enter COMMAND` (the disk-full fault's mounts, exec.ts);
 *   otherwise cd $HOME (else /) and `bash -c COMMAND` with argv[0] "bash", as sshd runs a command.
 * Exit 125 when the namespace or a mount fails, with the reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "kupgrade lab: cannot mount the node root in a private namespace: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  return 125;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* `unshare -Urm`: the caller's uid and gid become root in the new user namespace. */
static int map_to_root(uid_t uid, gid_t gid) {
  char map[64];
  if (write_file("/proc/self/setgroups", "deny") && errno != ENOENT) return -1;
  snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
  if (write_file("/proc/self/uid_map", map)) return -1;
  snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
  return write_file("/proc/self/gid_map", map);
}

/* One fstab entry, as mount(8) applies it: `bind` (and `rbind`) bind-mount the source, `ro` on a bind remounts it
 * read-only; any other option list is the filesystem's, with `ro` as MS_RDONLY and `defaults` meaning none. */
static int mount_entry(const char *source, const char *target, const char *type, char *options) {
  unsigned long flags = 0;
  int bind = 0;
  char data[8192] = "";
  size_t used = 0;
  for (char *save = NULL, *o = strtok_r(options, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    if (!strcmp(o, "bind")) bind = 1;
    else if (!strcmp(o, "rbind")) bind = 2;
    else if (!strcmp(o, "ro")) flags |= MS_RDONLY;
    else if (!strcmp(o, "rw") || !strcmp(o, "defaults")) continue;
    else {
      int n = snprintf(data + used, sizeof data - used, "%s%s", used ? "," : "", o);
      if (n < 0 || (size_t)n >= sizeof data - used) { errno = E2BIG; return -1; }
      used += (size_t)n;
    }
  }
  if (bind) {
    if (mount(source, target, NULL, MS_BIND | (bind == 2 ? MS_REC : 0), NULL)) return -1;
    return (flags & MS_RDONLY) ? mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) : 0;
  }
  return mount(source, target, type, flags, used ? data : NULL);
}

int main(int argc, char **argv) {
  int user_ns = 0, i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (!strcmp(argv[i], "--user-ns")) user_ns = 1;
    else if (!strcmp(argv[i], "--nice") && i + 1 < argc) { errno = 0; if (nice(atoi(argv[++i])) == -1 && errno) return fail("nice", NULL); }
    else { fprintf(stderr, "lab-enter: unknown option %s\n", argv[i]); return 125; }
  }
  if (argc - i != 2 && argc - i != 4) {
    fprintf(stderr, "usage: lab-enter [--user-ns] [--nice N] FSTAB COMMAND [IF_EXISTS SCRIPT]\n");
    return 125;
  }
  const char *fstab = argv[i], *command = argv[i + 1];
  const char *if_exists = argc - i == 4 ? argv[i + 2] : NULL, *script = argc - i == 4 ? argv[i + 3] : NULL;

  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWNS | (user_ns ? CLONE_NEWUSER : 0))) return fail("unshare", NULL);
  if (user_ns && map_to_root(uid, gid)) return fail("user namespace map", NULL);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return fail("propagation private", "/");

  FILE *f = fopen(fstab, "re");
  if (!f) return fail("open", fstab);
  char line[16384];
  while (fgets(line, sizeof line, f)) {
    char source[4096], target[4096], type[256], options[8192];
    if (line[0] == '#' || sscanf(line, "%4095s %4095s %255s %8191s", source, target, type, options) != 4) continue;
    if (mount_entry(source, target, type, options)) { fclose(f); return fail(type, target); }
  }
  fclose(f);

  if (if_exists && access(if_exists, F_OK) == 0) {
    execl("/bin/bash", "bash", "-c", script, "lab-enter", command, (char *)NULL);
  } else {
    const char *home = getenv("HOME");
    if (!home || chdir(home)) (void)!chdir("/");
    execl("/bin/bash", "bash", "-c", command, (char *)NULL);
  }
  fprintf(stderr, "kupgrade lab: cannot run /bin/bash: %s\n", strerror(errno));
  return 126;
}
