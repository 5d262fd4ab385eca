// Send budgets in the batch (docs/datapath.md, "Send budgets in the batch"): a seal entry that has
// used up the credit JavaScript gave it draws on its pool's round budget here, so a session within
// its fair share needs no JavaScript call at all however fast it sends. The sharing is
// core/fair-share.ts's deficit round robin (same rounds, quantum, reservations and spare); a
// refusal is not a drop here: the datagram stays in the batch for JavaScript, whose FairShare
// (charged with what the pool forwarded) admits it or drops it and counts the drop by reason.
#include "forward.h"

#include <time.h>

namespace sluice {

// CLOCK_MONOTONIC, not the coarse clock (one scheduler tick, 4 ms at HZ=250): a client's own
// socket parked until its round ends (park.cc) is put back by a timer on this clock, and must find
// the new round begun then, not a tick later (that tick was up to 40 % of a 10 ms round unread).
static int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static void Remember(FwdPool& p, int active) {
  p.history[p.history_at] = static_cast<uint32_t>(active);
  p.history_at = (p.history_at + 1) % kPoolRecentRounds;
}

// The most shares a slot can bank (fair-share.ts BANK_ROUNDS).
constexpr double kPoolBankRounds = 4;

// fair-share.ts #bankUnused: what `s` left of its share (negative: took beyond it), and its whole
// share of every round since its latest in which it was not asked for anything.
static void BankUnused(const FwdPool& p, FwdPoolSlot& s, double unused) {
  int64_t idle = p.round - s.round - 1;
  double b = s.bank + unused + (idle > 0 ? static_cast<double>(idle) * p.quantum : 0);
  double cap = kPoolBankRounds * p.quantum;
  s.bank = b <= 0 ? 0 : b < cap ? b : cap;
}

static void NewRound(FwdPool& p, int64_t now) {
  int64_t skipped = p.round_end == INT64_MIN ? 0 : (now - p.round_end) / p.round_ns;
  if (p.active > 0) p.last_busy = p.round;
  p.round += 1 + skipped;
  p.round_end = (p.round_end == INT64_MIN ? now : p.round_end + skipped * p.round_ns) + p.round_ns;
  Remember(p, p.active);
  for (int64_t i = 0; i < skipped && i < kPoolRecentRounds; i++) Remember(p, 0);
  int recent = 1;
  for (uint32_t h : p.history)
    if (static_cast<int>(h) > recent) recent = static_cast<int>(h);
  p.recent = recent;
  p.active = 0;
  p.owed = 0;
  p.expected_last = skipped >= kPoolRecentRounds ? 0 : p.expected_now;
  p.expected_now = 0;
  p.left = p.per_round;
  p.spare = p.per_round / 8 > 4 ? p.per_round / 8 : 4;
  p.quantum = p.per_round / recent;
}

// A refusal: counted by reason in the shared drops (JavaScript folds them into the session's slot,
// the budget's counters and the route's drop events); without them, left to JavaScript.
static int Refuse(FwdPools* ps, FwdPoolSlot& s, int id, int reason) {
  if (ps->drops == nullptr || id >= ps->drops_max) {
    s.offered--;  // not offered here: JavaScript's FairShare counts it
    return kPoolToJs;
  }
  ps->drops[id * kPoolDropReasons + reason] += 1;
  return kPoolDropped;
}

// The round's start for pool `p` and its slot `s`, once per round each (`now`: CLOCK_MONOTONIC ns).
static void Enter(FwdPool& p, FwdPoolSlot& s, int64_t now) {
  if (now >= p.round_end) NewRound(p, now);
  if (s.round != p.round) {
    bool backlogged = s.round == p.last_busy;
    double d = s.deficit;
    double carry = backlogged ? (d > 1 ? 1 : d < -1 ? -1 : d) : 0;
    if (s.round >= 0) BankUnused(p, s, s.refused && d > carry ? 0 : d - carry);
    s.refused = false;
    s.deficit = carry + p.quantum;
    s.fresh = !backlogged;
    s.round = p.round;
    p.active++;
    double share = static_cast<double>(static_cast<int64_t>(s.deficit));
    double want = 2 * s.offered + 1;
    double r = want < share ? want : share;
    s.reserved = r > 0 ? r : 0;
    s.expected = want;
    s.offered = 0;
    p.owed += s.reserved;
    p.expected_now += s.reserved;
  }
}

// fair-share.ts admit, for a slot already entered into its round: whether `s` may send one more
// datagram, taken from its share, from what the others leave, from the spare or from its bank;
// -1 when admitted, else the refusal's reason (0: agent-budget, 1: session-share). PoolAdmit
// applies it to the live state and PoolRoom to a copy, so the two cannot disagree.
static int Take(FwdPool& p, FwdPoolSlot& s) {
  s.offered++;
  if (p.left < 1) {
    if ((s.fresh || s.offered <= s.expected) && s.deficit >= 1 && p.spare >= 1) {
      s.deficit -= 1;
      p.spare -= 1;
      return -1;
    }
    if (s.bank >= 1) {
      s.bank -= 1;
      return -1;
    }
    return 0;
  }
  if (s.deficit >= 1) {
    s.deficit -= 1;
    p.left -= 1;
    if (s.reserved > 0) {
      s.reserved--;
      p.owed--;
    }
    return -1;
  }
  double unseen = p.expected_last > p.expected_now ? p.expected_last - p.expected_now : 0;
  if ((p.quantum >= 1 || s.deficit >= 0) && p.left - 1 >= p.owed + unseen) {
    s.deficit -= 1;
    p.left -= 1;
    return -1;
  }
  if (s.bank >= 1) {
    s.bank -= 1;
    return -1;
  }
  return 1;
}

int PoolRoom(FwdState* f, int id, int limit) {
  FwdPools* ps = f->pools;
  if (ps == nullptr || id >= static_cast<int>(ps->slots.size()) || ps->slots[id].pool < 0) return -1;
  FwdPoolSlot& s = ps->slots[id];
  FwdPool& p = ps->pools[s.pool];
  Enter(p, s, NowNs());
  // Where the pool has room for all of them beyond what it owes the others, each of the `limit`
  // Takes admits (from the entry's share, or borrowed: left - k >= owed + unseen + 1 before take k),
  // so the count needs no run (the usual case while the budget does not bind).
  double unseen = p.expected_last > p.expected_now ? p.expected_last - p.expected_now : 0;
  if (p.quantum >= 1 && p.left - limit >= p.owed + unseen) return limit;
  FwdPool q = p;
  FwdPoolSlot t = s;
  int room = 0;
  while (room < limit && Take(q, t) < 0) room++;
  return room;
}

int PoolAdmit(FwdState* f, int id, int64_t now) {
  FwdPools* ps = f->pools;
  if (ps == nullptr || id >= static_cast<int>(ps->slots.size())) return kPoolToJs;
  FwdPoolSlot& s = ps->slots[id];
  if (s.pool < 0) return kPoolToJs;
  FwdPool& p = ps->pools[s.pool];
  Enter(p, s, now != 0 ? now : NowNs());
  int reason = Take(p, s);
  if (reason < 0) return kPoolForward;
  s.refused = true;
  return Refuse(ps, s, id, reason);
}

int64_t PoolNow() { return NowNs(); }

int64_t PoolRoundEnd(FwdState* f, int id) {
  FwdPools* ps = f->pools;
  if (ps == nullptr || id >= static_cast<int>(ps->slots.size()) || ps->slots[id].pool < 0) return 0;
  return ps->pools[ps->slots[id].pool].round_end;
}

int PoolRefuseRound(FwdState* f, int id) {
  FwdPools* ps = f->pools;
  if (ps == nullptr || id >= static_cast<int>(ps->slots.size()) || ps->slots[id].pool < 0) return 0;
  FwdPoolSlot& s = ps->slots[id];
  s.refused = true;
  return ps->pools[s.pool].left < 1 ? 0 : 1;
}

bool PoolCountDrops(FwdState* f, int id, int reason, double n) {
  FwdPools* ps = f->pools;
  if (ps == nullptr || ps->drops == nullptr || id < 0 || id >= ps->drops_max) return false;
  ps->drops[id * kPoolDropReasons + reason] += n;
  return true;
}

void LeavePool(FwdState* f, int id) {
  FwdPools* ps = f->pools;
  if (ps != nullptr && id < static_cast<int>(ps->slots.size())) ps->slots[id] = FwdPoolSlot();
}

// ---- N-API ----

namespace {

FwdState* LiveFwd(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  Engine* e = static_cast<Engine*>(p);
  return e->destroyed ? nullptr : e->fwd;
}

napi_value Bool(napi_env env, bool b) {
  napi_value out;
  napi_get_boolean(env, b, &out);
  return out;
}

// forwardPoolNew(engine, perSecond, roundMs) -> pool id, or -1 (no forwarding table, perSecond <= 0)
napi_value PoolNew(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  FwdState* f = LiveFwd(env, argv[0]);
  double per_second = 0, round_ms = 0;
  if (napi_get_value_double(env, argv[1], &per_second) != napi_ok || napi_get_value_double(env, argv[2], &round_ms) != napi_ok) {
    napi_throw_type_error(env, nullptr, "forwardPoolNew(engine, perSecond, roundMs)");
    return nullptr;
  }
  if (f == nullptr || !(per_second > 0) || !(round_ms > 0)) return Int(env, -1);
  if (f->pools == nullptr) f->pools = new FwdPools();
  FwdPools* ps = f->pools;
  int id;
  if (!ps->free_ids.empty()) {
    id = ps->free_ids.back();
    ps->free_ids.pop_back();
  } else {
    id = static_cast<int>(ps->pools.size());
    ps->pools.emplace_back();
  }
  FwdPool& p = ps->pools[id];
  p = FwdPool();
  p.used = true;
  p.round_ns = static_cast<int64_t>(round_ms * 1e6);
  p.per_round = per_second * round_ms / 1000;
  return Int(env, id);
}

// forwardPoolFree(engine, pool): its entries forward on their credit alone from now on. Idempotent.
napi_value PoolFree(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  FwdState* f = LiveFwd(env, argv[0]);
  int32_t id = -1;
  if (f == nullptr || f->pools == nullptr || napi_get_value_int32(env, argv[1], &id) != napi_ok) return nullptr;
  FwdPools* ps = f->pools;
  if (id < 0 || id >= static_cast<int>(ps->pools.size()) || !ps->pools[id].used) return nullptr;
  for (FwdPoolSlot& s : ps->slots)
    if (s.pool == id) s = FwdPoolSlot();
  ps->pools[id] = FwdPool();
  ps->free_ids.push_back(id);
  return nullptr;
}

// forwardPoolAttach(engine, drops: Float64Array of kPoolDropReasons per entry): refusals are dropped in the batch
// and counted there by reason; before it, they go to JavaScript.
napi_value PoolAttach(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  FwdState* f = LiveFwd(env, argv[0]);
  napi_typedarray_type type;
  size_t length = 0, offset;
  void* data = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "forwardPoolAttach(engine, drops: Float64Array)");
    return nullptr;
  }
  if (f == nullptr) return nullptr;
  if (f->pools == nullptr) f->pools = new FwdPools();
  FwdPools* ps = f->pools;
  if (ps->drops_ref != nullptr) napi_delete_reference(env, ps->drops_ref);
  napi_create_reference(env, argv[1], 1, &ps->drops_ref);
  ps->drops = static_cast<double*>(data);
  ps->drops_max = static_cast<int>(length / kPoolDropReasons);
  return nullptr;
}

// forwardPoolJoin(engine, sealEntry, pool[, bank]) -> true when the entry now draws on the pool;
// `bank`: what the session had banked in JavaScript's FairShare (its slot there), carried over.
napi_value PoolJoin(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3) {
    napi_throw_type_error(env, nullptr, "forwardPoolJoin(engine, entry, pool[, bank])");
    return nullptr;
  }
  double bank = 0;
  if (argc > 3 && napi_get_value_double(env, argv[3], &bank) != napi_ok) bank = 0;
  FwdState* f = LiveFwd(env, argv[0]);
  int32_t entry = -1, pool = -1;
  if (f == nullptr || f->pools == nullptr || napi_get_value_int32(env, argv[1], &entry) != napi_ok || napi_get_value_int32(env, argv[2], &pool) != napi_ok)
    return Bool(env, false);
  FwdPools* ps = f->pools;
  if (entry < 0 || entry >= static_cast<int>(f->entries.size()) || !f->entries[entry].used || !f->entries[entry].seal) return Bool(env, false);
  if (pool < 0 || pool >= static_cast<int>(ps->pools.size()) || !ps->pools[pool].used) return Bool(env, false);
  if (static_cast<int>(ps->slots.size()) <= entry) ps->slots.resize(f->entries.size());
  // park.cc: a socket of this session alone is read no further than the pool allows, from its first harvest on.
  Engine* e = LiveEngine(env, argv[0]);
  int in = f->entries[entry].in_sock;
  if (e != nullptr && f->entries[entry].tagging == 0 && in >= 0 && in < static_cast<int>(e->socks.size()) && OneSession(e->socks[in]))
    e->socks[in].solo = entry;
  ps->slots[entry] = FwdPoolSlot();
  ps->slots[entry].pool = pool;
  ps->slots[entry].bank = bank > 0 ? bank : 0;
  if (ps->drops != nullptr && entry < ps->drops_max)
    for (int r = 0; r < kPoolDropReasons; r++) ps->drops[entry * kPoolDropReasons + r] = 0;
  return Bool(env, true);
}

}  // namespace

void FreePools(Engine* e, FwdState* f) {
  if (f->pools != nullptr && f->pools->drops_ref != nullptr) napi_delete_reference(e->env, f->pools->drops_ref);
  delete f->pools;
  f->pools = nullptr;
}

void RegisterForwardPool(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"forwardPoolNew", nullptr, PoolNew, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardPoolFree", nullptr, PoolFree, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardPoolJoin", nullptr, PoolJoin, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forwardPoolAttach", nullptr, PoolAttach, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
