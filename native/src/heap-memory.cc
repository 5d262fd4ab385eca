// The JavaScript heap's young generation, read and given back (docs/benchmarks.md, "Idle exposed
// UDP sessions: the young generation given back after a burst"). V8 grows its young generation
// (two semi-spaces) while a burst of long-lived objects survives scavenges, and shrinks it only in
// a full collection that finds the allocation rate low. A process that makes no garbage once the
// burst is over runs no collection at all, and V8's memory reducer judges the rate from the
// samples of its last collections (the burst's), so the grown semi-spaces stay resident for
// 80-105 s. TypeScript decides when a burst is over (core/young-generation.ts); these two calls
// read the young generation without allocating and ask V8 for a memory-reducing collection.
#include <node_api.h>
#include <string.h>
#include <v8.h>

#include "engine.h"

namespace sluice {
namespace {

// youngGeneration(out: Float64Array(2)): out = [committed bytes, used bytes] of V8's new space.
napi_value YoungGeneration(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  if (argc < 1 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) != napi_ok ||
      type != napi_float64_array || length < 2) {
    napi_throw_type_error(env, nullptr, "youngGeneration: expected a Float64Array of 2");
    return nullptr;
  }
  double* out = static_cast<double*>(data);
  out[0] = out[1] = 0;
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::HeapSpaceStatistics s;
  for (size_t i = 0; i < isolate->NumberOfHeapSpaces(); i++) {
    if (!isolate->GetHeapSpaceStatistics(&s, i) || strcmp(s.space_name(), "new_space") != 0) continue;
    out[0] = static_cast<double>(s.physical_space_size());
    out[1] = static_cast<double>(s.space_used_size());
  }
  return nullptr;
}

// reduceMemory(): moderate memory pressure. V8 starts an incremental collection that reduces the
// heap's footprint (its steps run as tasks on the event loop; no pause of a whole collection at
// once) and shrinks the young generation at its end. A no-op while a collection is under way.
napi_value ReduceMemory(napi_env env, napi_callback_info info) {
  v8::Isolate::GetCurrent()->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  // Pressure stays "moderate" until lifted: lift it, so V8 does not keep collecting for memory.
  v8::Isolate::GetCurrent()->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
  return nullptr;
}

}  // namespace

void RegisterHeapMemory(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"youngGeneration", nullptr, YoungGeneration, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceMemory", nullptr, ReduceMemory, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace sluice
