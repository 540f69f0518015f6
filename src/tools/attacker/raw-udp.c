/*
 * raw-udp: sends IPv4/UDP datagrams with any source address and port, for the adversarial
 * tests' off-path spoofer (src/tools/attacker/raw-udp.ts). An ordinary UDP socket cannot
 * use a source address:port another socket holds (the relay's, a registered agent's), so
 * this writes whole IP packets through a raw socket (needs root / CAP_NET_RAW).
 *
 * Only ever loopback: a record whose source or destination is outside 127.0.0.0/8 is
 * refused and counted, never sent.
 *
 * stdin: records, each
 *   src ip (4) | src port u16 BE | dst ip (4) | dst port u16 BE | repeat u16 BE |
 *   payload length u16 BE | payload
 * every record is sent `repeat` times. At end of input it prints one JSON line
 * {"sent":N,"errors":N,"refused":N} and exits 0. Compiled on demand by raw-udp.ts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADER 16
#define IP_HEADER 20
#define UDP_HEADER 8
#define MAX_PAYLOAD 65507

static unsigned char packet[IP_HEADER + UDP_HEADER + MAX_PAYLOAD];

static int read_full(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(0, buf + got, n - got);
    if (r == 0) return got == 0 ? 0 : -1;
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    got += (size_t)r;
  }
  return 1;
}

static uint32_t sum16(const unsigned char *p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += (uint32_t)(p[n - 1] << 8);
  return acc;
}

static uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)~acc;
}

static int loopback(const unsigned char *ip) { return ip[0] == 127; }

int main(void) {
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) { fprintf(stderr, "raw-udp: socket: %s (needs root)\n", strerror(errno)); return 1; }
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  unsigned long long sent = 0, errors = 0, refused = 0;
  unsigned char h[HEADER];
  uint16_t id = 1;
  for (;;) {
    int r = read_full(h, HEADER);
    if (r == 0) break;
    if (r < 0) { fprintf(stderr, "raw-udp: truncated record\n"); return 1; }
    unsigned repeat = (unsigned)(h[12] << 8 | h[13]);
    size_t len = (size_t)(h[14] << 8 | h[15]);
    unsigned char *ip = packet, *udp = packet + IP_HEADER, *payload = udp + UDP_HEADER;
    if (len > MAX_PAYLOAD || read_full(payload, len) != 1) { fprintf(stderr, "raw-udp: bad payload\n"); return 1; }
    if (!loopback(h) || !loopback(h + 6)) { refused += repeat; continue; }
    size_t total = IP_HEADER + UDP_HEADER + len;
    memset(ip, 0, IP_HEADER);
    ip[0] = 0x45;
    ip[2] = (unsigned char)(total >> 8); ip[3] = (unsigned char)total;
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    memcpy(ip + 12, h, 4);
    memcpy(ip + 16, h + 6, 4);
    memcpy(udp, h + 4, 2);
    memcpy(udp + 2, h + 10, 2);
    udp[4] = (unsigned char)((UDP_HEADER + len) >> 8); udp[5] = (unsigned char)(UDP_HEADER + len);
    udp[6] = udp[7] = 0;
    /* UDP checksum over the pseudo header (addresses, protocol, length) and the datagram */
    uint32_t acc = sum16(ip + 12, 8, 0) + IPPROTO_UDP + (uint32_t)(UDP_HEADER + len);
    uint16_t c = fold(sum16(udp, UDP_HEADER + len, acc));
    if (c == 0) c = 0xffff;
    udp[6] = (unsigned char)(c >> 8); udp[7] = (unsigned char)c;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    memcpy(&to.sin_addr, h + 6, 4);
    for (unsigned i = 0; i < repeat; i++) {
      ip[4] = (unsigned char)(id >> 8); ip[5] = (unsigned char)id; id++;
      ip[10] = ip[11] = 0;
      uint16_t ic = fold(sum16(ip, IP_HEADER, 0));
      ip[10] = (unsigned char)(ic >> 8); ip[11] = (unsigned char)ic;
      if (sendto(fd, packet, total, 0, (struct sockaddr *)&to, sizeof to) < 0) errors++; else sent++;
    }
  }
  printf("{\"sent\":%llu,\"errors\":%llu,\"refused\":%llu}\n", sent, errors, refused);
  return 0;
}
