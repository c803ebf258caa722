/*
 * kupgrade lab: what a node's network does to the API VIP and the kubernetes Service ClusterIP, for every program
 * that runs on the node (bash /dev/tcp, a real curl, python …), not only for the stand-ins. Preloaded into every
 * program on the node through the node's /etc/ld.so.preload (node/layout.ts); the lab's nodes share the host's
 * network, so this is where their routes live.
 *  - The ClusterIP (port 443) reaches the API server, as kube-proxy's rules make it do on a real node.
 *  - Under the api-vip-unreachable fault (lab/faults, or lab/pod-faults for pods) packets to the VIP and the
 *    ClusterIP vanish: the connection goes to a listener whose accept queue is full, which drops SYNs, so connect()
 *    waits as for a vanished packet (until the caller's timeout, or the kernel gives up: ETIMEDOUT).
 * The addresses come from $LAB_DIR/vip: "API_HOST API_PORT CLUSTER_IP". LAB_LOCAL_APISERVER set: the lab API server
 * at the VIP's address stands in for the node's own apiserver (the curl stand-in), which is no route through the VIP.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
static connect_fn real_connect;

static int lab_file_exists(const char *lab, const char *rel) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", lab, rel);
  return access(p, F_OK) == 0;
}

static int vip_fault(const char *lab) {
  if (lab_file_exists(lab, "faults/api-vip-unreachable")) return 1;
  const char *pod = getenv("LAB_POD");
  return pod && *pod && lab_file_exists(lab, "pod-faults/api-vip-unreachable");
}

/* 1: `to` is the API VIP, 2: the Service ClusterIP on 443, 0: neither. `api` gets the API server's address. */
static int lab_address(const char *lab, const struct sockaddr_in *to, struct sockaddr_in *api) {
  char p[4096], host[64], cluster_ip[64];
  unsigned port;
  int kind = 0;
  snprintf(p, sizeof p, "%s/vip", lab);
  FILE *f = fopen(p, "re");
  if (!f) return 0;
  if (fscanf(f, "%63s %u %63s", host, &port, cluster_ip) == 3) {
    struct in_addr h, c;
    if (inet_pton(AF_INET, host, &h) == 1 && inet_pton(AF_INET, cluster_ip, &c) == 1 && port > 0 && port < 65536) {
      memset(api, 0, sizeof *api);
      api->sin_family = AF_INET;
      api->sin_addr = h;
      api->sin_port = htons((unsigned short)port);
      if (to->sin_addr.s_addr == h.s_addr && to->sin_port == api->sin_port) kind = 1;
      else if (to->sin_addr.s_addr == c.s_addr && to->sin_port == htons(443)) kind = 2;
    }
  }
  fclose(f);
  return kind;
}

/* A loopback listener (backlog 0) whose accept queue one connection fills: every later SYN to it is dropped. */
static int black_hole(struct sockaddr_in *out) {
  static struct sockaddr_in hole;
  static int ready;
  if (!ready) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) return -1;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 0) < 0 || getsockname(l, (struct sockaddr *)&a, &len) < 0) {
      close(l);
      return -1;
    }
    int fill = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fill >= 0) {
      struct pollfd p = { .fd = fill, .events = POLLOUT };
      real_connect(fill, (struct sockaddr *)&a, sizeof a);
      poll(&p, 1, 200);
    }
    hole = a;
    ready = 1;
  }
  *out = hole;
  return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  if (!real_connect) real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
  const char *lab = getenv("LAB_DIR");
  if (lab && !getenv("LAB_LOCAL_APISERVER") && addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    struct sockaddr_in api, hole;
    int kind = lab_address(lab, (const struct sockaddr_in *)addr, &api);
    if (kind && vip_fault(lab) && black_hole(&hole) == 0) return real_connect(fd, (struct sockaddr *)&hole, sizeof hole);
    if (kind == 2) return real_connect(fd, (struct sockaddr *)&api, sizeof api);
  }
  return real_connect(fd, addr, len);
}
