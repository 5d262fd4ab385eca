// Send budgets in the batch (forward-pool.cc): a seal entry whose credit is used up draws on the
// round budget of its pool (one per agent and direction, as JavaScript's SendBudget), shared
// fairly among the pool's entries the way core/fair-share.ts shares it. What the pool refuses
// stays in the batch for JavaScript, whose FairShare admits it or drops it with its reason.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <vector>

namespace sluice {

constexpr int kPoolRecentRounds = 10;

// One budget: core/fair-share.ts's FairShare without its drop counters (a refusal is no drop
// here: the datagram goes to JavaScript).
struct FwdPool {
  bool used = false;
  double per_round = 0;
  int64_t round_ns = 10000000;
  int64_t round_end = INT64_MIN;
  int64_t round = 0;
  int64_t last_busy = -1;
  double left = 0;
  int active = 0;
  int recent = 1;
  uint32_t history[kPoolRecentRounds] = {};
  int history_at = 0;
  double quantum = 0;
  double owed = 0;
  double expected_now = 0;
  double expected_last = 0;
  double spare = 0;
};

// One seal entry's place in its pool (FairShare's FairSlot).
struct FwdPoolSlot {
  int pool = -1;
  int64_t round = -1;
  double deficit = 0;
  bool fresh = true;
  double offered = 0;
  double reserved = 0;
  double expected = 1;
  // Its share left unused, at most kPoolBankRounds shares (fair-share.ts FairSlot.bank), and
  // whether it was refused in its latest round (then what it left was not unused).
  double bank = 0;
  bool refused = false;
};

struct FwdPools {
  std::vector<FwdPool> pools;
  std::vector<int> free_ids;
  std::vector<FwdPoolSlot> slots;  // by entry id
  // Shared with JavaScript (forwardPoolAttach): per entry, datagrams dropped for its budget as
  // [agent-budget, session-share, stale] (stale: age.cc); without it a refusal goes to JavaScript.
  double* drops = nullptr;
  int drops_max = 0;
  napi_ref drops_ref = nullptr;
};

// The drop reasons counted per entry, in this order (src/datapath/offload-pool.ts agrees).
constexpr int kPoolDropReasons = 3;
constexpr int kPoolStale = 2;  // waited in a parked socket's queue past its bound (age.cc)

// PoolAdmit's verdicts.
constexpr int kPoolForward = 0;  // within the budget: forward it
constexpr int kPoolToJs = 1;     // no pool (or no drop counters): JavaScript decides
constexpr int kPoolDropped = 2;  // refused and counted by reason: the datagram is consumed

struct FwdState;
// Whether entry `id` may forward one more datagram under its pool's budget now: kPoolForward
// (counted against the budget), kPoolDropped (refused: counted by reason, as FairShare would drop
// it), or kPoolToJs (no pool: the datagram goes to JavaScript). `now`: PoolNow() taken once for a
// batch (a batch lasts well under a round), or 0 to read the clock here.
int PoolAdmit(FwdState* f, int id, int64_t now = 0);
// How many datagrams entry `id` may forward now under its pool, up to `limit`: what PoolAdmit
// would admit in a row (the same rule run on a copy of the pool and the entry's place in it), or
// -1 when it has no pool.
int PoolRoom(FwdState* f, int id, int limit);
// The pools' clock (CLOCK_MONOTONIC ns).
int64_t PoolNow();
// When the round in which entry `id`'s pool last judged it ends (CLOCK_MONOTONIC ns).
int64_t PoolRoundEnd(FwdState* f, int id);
// Entry `id` is refused for the rest of its round without a datagram read (its socket parked,
// park.cc): marked refused as PoolAdmit would (nothing banked), and the reason a refusal now
// has (0: agent-budget, 1: session-share).
int PoolRefuseRound(FwdState* f, int id);
// `n` datagrams of entry `id` dropped for its budget elsewhere (by the kernel at its parked
// socket), counted with the pool's drops by `reason`; false when there are no such counters.
bool PoolCountDrops(FwdState* f, int id, int reason, double n);
// Entry `id` leaves its pool (it is being removed).
void LeavePool(FwdState* f, int id);

}  // namespace sluice
