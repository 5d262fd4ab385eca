{
  # The native UDP datapath (docs/datapath.md). Built by scripts/build-native.mjs against the
  # running Node's own headers; Linux only (recvmmsg, sendmmsg, UDP_SEGMENT, epoll).
  "targets": [
    {
      "target_name": "sluice_udp",
      "sources": ["src/addon.cc", "src/engine.cc", "src/tx.cc", "src/errors.cc", "src/thread.cc", "src/seal.cc", "src/aead.cc", "src/forward.cc", "src/forward-api.cc", "src/forward-pool.cc", "src/stream.cc", "src/stream-pump.cc", "src/stream-api.cc", "src/hold.cc", "src/sockopt.cc", "src/forward-peer.cc", "src/gro.cc", "src/isolate.cc", "src/stream-sealed.cc", "src/stream-sealed-api.cc", "src/sealed-record.cc", "src/stream-join.cc", "src/heavy.cc", "src/forward-tag.cc", "src/heap-memory.cc", "src/stream-sealed-keep.cc", "src/stream-trunk.cc", "src/stream-trunk-api.cc", "src/stream-trunk-setup.cc", "src/sched-slice.cc", "src/stream-relayed.cc", "src/park.cc", "src/age.cc", "src/ipsec-mb.cc", "src/stream-moderate.cc", "src/stream-congestion.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      # dlopen for ipsec-mb (src/ipsec-mb.cc): in libc since glibc 2.34, in libdl before.
      "libraries": ["-ldl"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
