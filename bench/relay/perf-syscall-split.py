#!/usr/bin/env python3
"""Splits a relay's `perf record -g` samples by the system call they were taken in (the outermost
__x64_sys_* frame), or by the user-space object for samples outside one, as microseconds per
connection: each sample is 250 us at -F 4000.
  perf script -i perf.data | python3 bench/relay/perf-syscall-split.py CONNECTIONS_IN_THE_RECORDING
The last rows count samples anywhere under the connect() port search (__inet_hash_connect),
epoll's per-item polls and tcp_poll. docs/benchmarks.md, "TCP connection rate: where a
connection waits", has the figures taken with it."""
import sys, re, collections
c = collections.Counter(); n = 0; fine = collections.Counter()
def flush(stack):
    global n
    if not stack: return
    n += 1
    sysc = None
    for sym, dso in stack:
        m = re.match(r'(__x64_sys_|__do_sys_)(\w+)', sym)
        if m: sysc = m.group(2)
    if sysc:
        c['sys:' + sysc] += 1
        # special: port search
        if any(s in ('__inet_hash_connect',) for s, d in stack): fine['connect:__inet_hash_connect'] += 1
        if any(s in ('ep_item_poll','ep_send_events') for s, d in stack) : fine['epoll: ep_send_events/ep_item_poll'] += 1
        if any(s=='tcp_poll' for s,d in stack): fine['tcp_poll anywhere'] += 1
    else:
        top = stack[0]
        if 'kernel' in top[1]:
            c['kernel-other:' + top[0]] += 1
        else:
            d = top[1].split('/')[-1]
            if d.startswith('[JIT]') or 'perf-' in d: d = 'JIT'
            c['user:' + d] += 1
stack = []
for line in sys.stdin:
    line = line.rstrip('\n')
    if not line.strip():
        flush(stack); stack = []; continue
    if line[0] not in ' \t':
        flush(stack); stack = []; continue
    m = re.match(r'\s+[0-9a-f]+\s+(\S+)\s+\((.*)\)', line)
    if m:
        sym = m.group(1).split('+')[0]
        stack.append((sym, m.group(2)))
flush(stack)
tot = n
conns = float(sys.argv[1]) if len(sys.argv) > 1 else 0
for k, v in c.most_common(40):
    print(f'{k:45s} {100*v/tot:6.2f}%' + (f'  {v*250/conns:6.2f} us/conn' if conns else ''))
for k, v in fine.items(): print(f'{k:45s} {100*v/tot:6.2f}%' + (f'  {v*250/conns:6.2f} us/conn' if conns else ''))
print('samples', tot)
