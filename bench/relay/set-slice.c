// set-slice PID MICROSECONDS: gives every thread of PID a custom scheduler slice (EEVDF, Linux
// 6.12+: sched_setattr with sched_runtime under SCHED_OTHER), so that tasks woken beside a busy
// relay (the service, the clients) preempt it sooner. Used by flood-fairness.sh (SLICE_US) to try
// it as a lever on the second client's tail (docs/expose.md, "What makes the second client's tail").
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t util_min, util_max;
};

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: set-slice PID MICROSECONDS\n");
    return 2;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", atoi(argv[1]));
  DIR* d = opendir(path);
  if (!d) {
    perror(path);
    return 1;
  }
  int ok = 0, failed = 0;
  for (struct dirent* e; (e = readdir(d));) {
    int tid = atoi(e->d_name);
    if (tid <= 0) continue;
    struct sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_runtime = strtoull(argv[2], 0, 10) * 1000;
    if (syscall(SYS_sched_setattr, tid, &a, 0) == 0) ok++;
    else failed++;
  }
  closedir(d);
  printf("slice %s us on %d threads (%d refused)\n", argv[2], ok, failed);
  return ok > 0 ? 0 : 1;
}
