// The native-thread readiness variant (measured against uv_poll in docs/datapath.md).
#include "engine.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace sluice {

static void OnAsync(uv_async_t* handle) {
  Engine* e = static_cast<Engine*>(handle->data);
  if (!e->destroyed) DrainReady(e);
  uv_sem_post(&e->resume);
}

static void Run(void* arg) {
  Engine* e = static_cast<Engine*>(arg);
  while (!e->stop.load()) {
    epoll_event ev;
    int n = epoll_wait(e->epfd, &ev, 1, -1);
    if (e->stop.load()) break;
    if (n <= 0) continue;
    uv_async_send(&e->async);
    uv_sem_wait(&e->resume);
  }
}

int StartThread(Engine* e, uv_loop_t* loop) {
  e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->wake_fd < 0) return -1;
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = 0xffffffffu;  // never a socket id: Harvest skips it
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev) < 0) return -1;
  if (uv_sem_init(&e->resume, 0) != 0) return -1;
  if (uv_async_init(loop, &e->async, OnAsync) != 0) return -1;
  e->async.data = e;
  uv_unref(reinterpret_cast<uv_handle_t*>(&e->async));
  e->threaded = true;
  e->owners++;
  return uv_thread_create(&e->thread, Run, e);
}

static void OnAsyncClosed(uv_handle_t* h) {
  Engine* e = static_cast<Engine*>(h->data);
  uv_sem_destroy(&e->resume);
  if (--e->owners == 0) delete e;
}

void StopThread(Engine* e) {
  if (!e->threaded) return;
  e->stop.store(true);
  uint64_t one = 1;
  (void)!write(e->wake_fd, &one, sizeof one);
  uv_sem_post(&e->resume);
  uv_thread_join(&e->thread);
  close(e->wake_fd);
  e->wake_fd = -1;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->async), OnAsyncClosed);
}

}  // namespace sluice
