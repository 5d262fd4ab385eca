// rtt-trace: one paced UDP echo client that keeps every sample, to see *when* a tail happens
// (flood-fairness.sh TRACE=1). Sends SIZE-byte datagrams carrying (sequence, send time) at RATE/s
// for DUR s to HOST:PORT and prints, per BUCKET ms of send time: sent, lost, p50, p99, max RTT
// (microseconds); then the whole run's loss, p50, p99, p99.9, max, and how many samples were
// over 1, 5 and 20 ms. Bounded by DUR + 0.3 s. Loopback only in the bench.
//   rtt-trace -t 127.0.0.1:PORT [-r 2000] [-d 2] [-s 64] [-b 100]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}
static int cmp(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}
static void stats(uint64_t* v, size_t n, double* p50, double* p99, double* mx) {
  qsort(v, n, sizeof *v, cmp);
  *p50 = n ? v[n / 2] / 1e3 : -1;
  *p99 = n ? v[(size_t)(n * 0.99)] / 1e3 : -1;
  *mx = n ? v[n - 1] / 1e3 : -1;
}

int main(int argc, char** argv) {
  const char* target = NULL;
  double rate = 2000, dur = 2;
  int size = 64, bucket_ms = 100, o;
  while ((o = getopt(argc, argv, "t:r:d:s:b:")) != -1) {
    if (o == 't') target = optarg;
    else if (o == 'r') rate = atof(optarg);
    else if (o == 'd') dur = atof(optarg);
    else if (o == 's') size = atoi(optarg);
    else if (o == 'b') bucket_ms = atoi(optarg);
    else { fprintf(stderr, "usage: rtt-trace -t HOST:PORT [-r pps] [-d secs] [-s size] [-b bucket_ms]\n"); return 2; }
  }
  if (!target || rate <= 0 || dur <= 0 || size < 16 || size > 1400 || bucket_ms <= 0) { fprintf(stderr, "rtt-trace: need -t HOST:PORT, rate > 0, dur > 0, 16 <= size <= 1400\n"); return 2; }
  char host[64];
  const char* colon = strrchr(target, ':');
  if (!colon || colon - target >= (long)sizeof host) { fprintf(stderr, "rtt-trace: bad target %s\n", target); return 2; }
  memcpy(host, target, colon - target);
  host[colon - target] = 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) { fprintf(stderr, "rtt-trace: bad host %s\n", host); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) < 0) { perror("rtt-trace: socket"); return 1; }
  size_t cap = (size_t)(rate * dur) + 16;
  uint64_t* sent_at = calloc(cap, sizeof(uint64_t));
  uint64_t* rtt = calloc(cap, sizeof(uint64_t));  // 0: no answer
  char buf[2048] = {0};
  uint64_t interval = (uint64_t)(1e9 / rate), t0 = now_ns(), end = t0 + (uint64_t)(dur * 1e9), next = t0;
  size_t sent = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end + 300000000ull) break;
    if (t >= next && t < end && sent < cap) {
      uint64_t seq = sent;
      memcpy(buf, &seq, 8);
      memcpy(buf + 8, &t, 8);
      if (send(fd, buf, size, 0) > 0) sent_at[sent++] = t;
      next += interval;
      if (next < t) next = t + interval;
      continue;
    }
    uint64_t wait = (t < end ? next : end + 300000000ull) - t;
    struct timespec to = {wait / 1000000000ull, wait % 1000000000ull};
    if (ppoll(&p, 1, &to, NULL) > 0) {
      ssize_t r;
      while ((r = recv(fd, buf, sizeof buf, 0)) >= 16) {
        uint64_t seq, ts, tr = now_ns();
        memcpy(&seq, buf, 8);
        memcpy(&ts, buf + 8, 8);
        if (seq < sent && sent_at[seq] == ts && rtt[seq] == 0) rtt[seq] = tr - ts;
      }
    }
  }
  uint64_t* v = malloc(cap * sizeof(uint64_t));
  uint64_t bns = (uint64_t)bucket_ms * 1000000ull;
  size_t i = 0, lost_all = 0, over1 = 0, over5 = 0, over20 = 0;
  printf("%8s %6s %5s %9s %9s %9s\n", "t_ms", "sent", "lost", "p50_us", "p99_us", "max_us");
  while (i < sent) {
    uint64_t b = (sent_at[i] - t0) / bns;
    size_t n = 0, lost = 0, k = 0;
    for (; i < sent && (sent_at[i] - t0) / bns == b; i++, k++) {
      if (rtt[i] == 0) lost++;
      else v[n++] = rtt[i];
    }
    double p50, p99, mx;
    stats(v, n, &p50, &p99, &mx);
    printf("%8llu %6zu %5zu %9.0f %9.0f %9.0f\n", (unsigned long long)(b * bucket_ms), k, lost, p50, p99, mx);
    lost_all += lost;
  }
  size_t n = 0;
  for (size_t j = 0; j < sent; j++) if (rtt[j]) {
    v[n++] = rtt[j];
    over1 += rtt[j] > 1000000ull;
    over5 += rtt[j] > 5000000ull;
    over20 += rtt[j] > 20000000ull;
  }
  qsort(v, n, sizeof *v, cmp);
  printf("trace: sent=%zu lost=%zu loss_pct=%.3f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f over_1ms=%zu over_5ms=%zu over_20ms=%zu\n",
         sent, lost_all, sent ? 100.0 * lost_all / sent : 0, n ? v[n / 2] / 1e3 : -1, n ? v[(size_t)(n * 0.99)] / 1e3 : -1,
         n ? v[(size_t)(n * 0.999)] / 1e3 : -1, n ? v[n - 1] / 1e3 : -1, over1, over5, over20);
  return 0;
}
