/*
 * delay-bridge: a two-port Ethernet bridge that holds every frame for a delay.
 *
 * The lab's replacement for `tc netem delay` (this kernel has no sch_netem). It runs
 * in a middle network namespace that owns two veth ends, A and B; the far ends of the
 * two veth pairs are the lab's real link ends. Every frame received on A is sent on B
 * after delay + uniform jitter, and the other way round. Frames are never reordered
 * (a frame's release time is at least the previous frame's in the same direction),
 * which is what a real path with queueing jitter does, and what keeps TCP sane.
 *
 * Node cannot open AF_PACKET sockets without a native module; this file is compiled
 * with the machine's cc by src/lab/bridge-build.ts.
 *
 * Usage: delay-bridge IFACE_A IFACE_B DELAY_US JITTER_US SEED
 * Stops on SIGTERM/SIGINT. Prints "ready" on stdout once both sockets are bound.
 *
 * The end veths must have tx checksum offload turned off (ethtool -K DEV tx off):
 * a veth hands CHECKSUM_PARTIAL frames to AF_PACKET with the checksum not filled in.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 65536
/* queue slot size: offloads are off on the link ends, so frames are at most MTU (1500)
 * + Ethernet header; anything larger is counted as oversize and dropped */
#define SLOT 2048
/* Per direction queue capacity in frames; a full queue drops the new frame (tail drop),
 * like a router's bounded buffer. 4096 frames of 1500 bytes = 6 MB in flight: enough
 * for a 20 MB transfer at 100 ms delay on loopback speeds to be window-limited, not
 * bridge-limited. */
#define QCAP 4096

struct frame {
  uint64_t release_ns;
  uint32_t len;
  unsigned char *data;
};

struct queue {
  struct frame f[QCAP];
  unsigned head, count;
  uint64_t last_release_ns;
  uint64_t dropped;
};

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: deterministic jitter from the seed */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

static int open_port(const char *ifname, int *ifindex_out) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) { perror("socket(AF_PACKET)"); return -1; }
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0) { fprintf(stderr, "no interface %s\n", ifname); close(fd); return -1; }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); close(fd); return -1; }
  /* frames are addressed to the far end's MAC, not ours */
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) { perror("promisc"); close(fd); return -1; }
#ifdef PACKET_IGNORE_OUTGOING
  /* do not read back the frames we send ourselves */
  int one = 1;
  (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
#endif
  int buf = 8 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  *ifindex_out = (int)idx;
  return fd;
}

static void enqueue(struct queue *q, const unsigned char *data, uint32_t len, uint64_t now,
                    uint64_t delay_ns, uint64_t jitter_ns) {
  if (q->count == QCAP || len > SLOT) { q->dropped++; return; }
  uint64_t rel = now + delay_ns + (jitter_ns ? rng_next() % (jitter_ns + 1) : 0);
  if (rel < q->last_release_ns) rel = q->last_release_ns; /* FIFO: never reorder */
  q->last_release_ns = rel;
  struct frame *f = &q->f[(q->head + q->count) % QCAP];
  f->release_ns = rel;
  f->len = len;
  memcpy(f->data, data, len);
  q->count++;
}

/* Send every frame whose time has come; returns ns until the next one (or -1). */
static int64_t flush(struct queue *q, int fd, int ifindex, uint64_t now) {
  while (q->count > 0) {
    struct frame *f = &q->f[q->head];
    if (f->release_ns > now) return (int64_t)(f->release_ns - now);
    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = ETH_ALEN;
    memcpy(to.sll_addr, f->data, ETH_ALEN);
    if (sendto(fd, f->data, f->len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
      if (errno == EAGAIN || errno == ENOBUFS) return 100000; /* retry in 0.1 ms */
      q->dropped++;
    }
    q->head = (q->head + 1) % QCAP;
    q->count--;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IFACE_A IFACE_B DELAY_US JITTER_US SEED\n", argv[0]);
    return 2;
  }
  uint64_t delay_ns = strtoull(argv[3], NULL, 10) * 1000ull;
  uint64_t jitter_ns = strtoull(argv[4], NULL, 10) * 1000ull;
  rng_state ^= strtoull(argv[5], NULL, 10) * 0x9E3779B97F4A7C15ull;
  if (rng_state == 0) rng_state = 1;

  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  int idx[2];
  int fd[2];
  fd[0] = open_port(argv[1], &idx[0]);
  fd[1] = open_port(argv[2], &idx[1]);
  if (fd[0] < 0 || fd[1] < 0) return 1;

  /* q[0]: frames received on A, to send on B; q[1]: the other way */
  static struct queue q[2];
  for (int d = 0; d < 2; d++) {
    for (int i = 0; i < QCAP; i++) {
      q[d].f[i].data = malloc(SLOT);
      if (!q[d].f[i].data) { fprintf(stderr, "out of memory\n"); return 1; }
    }
  }
  static unsigned char buf[MAX_FRAME];
  printf("ready\n");
  fflush(stdout);

  while (!stop_flag) {
    uint64_t now = now_ns();
    int64_t wait0 = flush(&q[0], fd[1], idx[1], now);
    int64_t wait1 = flush(&q[1], fd[0], idx[0], now);
    int64_t wait = wait0 < 0 ? wait1 : (wait1 < 0 || wait0 < wait1 ? wait0 : wait1);
    struct pollfd pfd[2] = {{fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}};
    struct timespec ts, *tsp = NULL;
    if (wait >= 0) { ts.tv_sec = wait / 1000000000; ts.tv_nsec = wait % 1000000000; tsp = &ts; }
    int n = ppoll(pfd, 2, tsp, NULL);
    if (n < 0) { if (errno == EINTR) continue; perror("ppoll"); return 1; }
    now = now_ns();
    for (int p = 0; p < 2; p++) {
      if (!(pfd[p].revents & POLLIN)) continue;
      for (int burst = 0; burst < 256; burst++) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t len = recvfrom(fd[p], buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (len < 0) break;
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        if (len < ETH_HLEN) continue;
        enqueue(&q[p], buf, (uint32_t)len, now, delay_ns, jitter_ns);
      }
    }
  }
  fprintf(stderr, "delay-bridge: stopped; dropped a->b %llu, b->a %llu\n",
          (unsigned long long)q[0].dropped, (unsigned long long)q[1].dropped);
  return 0;
}
