// System errors shaped like Node's own (code, errno, syscall), so callers branch on `code`
// the same way whichever datapath raised them.
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

namespace sluice {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

napi_value ErrnoError(napi_env env, int err, const char* syscall, const char* detail) {
  char text[256];
  snprintf(text, sizeof text, "%s %s%s%s", syscall, ErrnoName(err), detail[0] ? " " : "", detail);
  napi_value code, msg, error, num, sys;
  napi_create_string_utf8(env, ErrnoName(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &num);  // negative, as in Node's system errors
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "errno", num);
  napi_set_named_property(env, error, "syscall", sys);
  return error;
}

}  // namespace sluice
