// The scheduler slice of one thread (docs/configuration.md, "scheduler"): EEVDF's custom slice
// (Linux 6.12+), sched_setattr(2) with sched_runtime under a fair policy. A shorter slice lets the
// tasks woken beside a busy relay (the service it forwards to, other clients) run sooner, at the
// cost of more context switches. TypeScript lists the threads and decides when (ops/scheduler-slice.ts).
// The thread's policy, nice value and reset-on-fork flag are kept: only the slice changes.
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"

namespace sluice {
namespace {

// The kernel's struct sched_attr (include/uapi/linux/sched/types.h), version 1 (with util clamps).
struct SchedAttr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t util_min, util_max;
};

constexpr uint64_t kResetOnFork = 0x01;  // SCHED_FLAG_RESET_ON_FORK

bool FairPolicy(uint32_t policy) { return policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE; }

int GetAttr(int tid, SchedAttr* a) {
  memset(a, 0, sizeof *a);
  return syscall(SYS_sched_getattr, tid, a, sizeof *a, 0) == 0 ? 0 : errno;
}

int32_t Int32Arg(napi_env env, napi_value v) {
  int32_t out = -1;
  napi_get_value_int32(env, v, &out);
  return out;
}

napi_value Number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// schedSlice(tid, microseconds) -> 0, or the errno of the refusal (EOPNOTSUPP: the thread is not
// under a fair policy, so it has no slice). 0 µs gives the thread the system's slice back; the
// kernel clamps others to 100..100000 µs.
napi_value SchedSlice(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  int32_t tid = Int32Arg(env, argv[0]);
  int32_t us = Int32Arg(env, argv[1]);
  if (tid < 0 || us < 0) {
    napi_throw_range_error(env, nullptr, "schedSlice(tid, microseconds): expected non-negative integers");
    return nullptr;
  }
  SchedAttr a;
  int err = GetAttr(tid, &a);
  if (err != 0) return Number(env, err);
  if (!FairPolicy(a.sched_policy)) return Number(env, EOPNOTSUPP);
  SchedAttr want;
  memset(&want, 0, sizeof want);
  want.size = sizeof want;
  want.sched_policy = a.sched_policy;
  want.sched_flags = a.sched_flags & kResetOnFork;
  want.sched_nice = a.sched_nice;
  want.sched_runtime = static_cast<uint64_t>(us) * 1000;
  return Number(env, syscall(SYS_sched_setattr, tid, &want, 0) == 0 ? 0 : errno);
}

// schedSliceOf(tid) -> the thread's slice in nanoseconds (its custom one, else the system's), or
// -errno; -EOPNOTSUPP when the thread is not under a fair policy.
napi_value SchedSliceOf(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  int32_t tid = Int32Arg(env, argv[0]);
  if (tid < 0) {
    napi_throw_range_error(env, nullptr, "schedSliceOf(tid): expected a non-negative integer");
    return nullptr;
  }
  SchedAttr a;
  int err = GetAttr(tid, &a);
  if (err != 0) return Number(env, -err);
  if (!FairPolicy(a.sched_policy)) return Number(env, -EOPNOTSUPP);
  return Number(env, static_cast<double>(a.sched_runtime));
}

}  // namespace

void RegisterSchedSlice(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"schedSlice", nullptr, SchedSlice, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"schedSliceOf", nullptr, SchedSliceOf, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
