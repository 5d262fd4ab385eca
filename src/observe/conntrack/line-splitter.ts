/**
 * Cuts a text stream into lines without letting one unterminated line grow without bound: a line
 * longer than `maxChars` is dropped up to its newline and counted through `onOverlong`.
 * `\r\n` and `\n` both end a line. Not re-entrant: call from one stream's 'data' handler.
 */
export class LineSplitter {
  #partial = '';
  #discarding = false;

  constructor(
    readonly maxChars: number,
    readonly onLine: (line: string) => void,
    readonly onOverlong: () => void,
  ) {}

  push(chunk: string): void {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', from);
      if (nl < 0) break;
      const piece = chunk.slice(from, nl);
      from = nl + 1;
      if (this.#discarding) {
        this.#discarding = false;
        continue;
      }
      const line = this.#partial + piece;
      this.#partial = '';
      if (line.length > this.maxChars) this.onOverlong();
      else this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    if (this.#discarding) return;
    this.#partial += chunk.slice(from);
    if (this.#partial.length > this.maxChars) {
      this.#partial = '';
      this.#discarding = true;
      this.onOverlong();
    }
  }

  /** End of stream: a last line without a newline is still delivered (it may be cut short). */
  end(): void {
    const rest = this.#partial;
    this.#partial = '';
    this.#discarding = false;
    if (rest !== '') this.onLine(rest);
  }
}
