/**
 * Runs tasks one at a time, in the order they were queued: file reloads (SIGHUP, the file watch)
 * and container changes never overlap. A failed task does not stop the ones after it.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(task);
    this.#tail = next.catch(() => {});
    return next;
  }
}
