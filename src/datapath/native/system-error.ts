import { getSystemErrorName } from 'node:util';

export type SystemError = Error & { code: string; errno: number; syscall: string };

/** A system error shaped like Node's own (`code`, negative `errno`, `syscall`), from an errno the addon reported. */
export function systemError(errno: number, syscall: string): SystemError {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall });
}

/** The code of a pair's end: a sealed pair's own (ESEALED_*, by `sealedCodes`) or the system's. */
export function endCode(errno: number, sealedCodes: ReadonlyMap<number, string>): string {
  return sealedCodes.get(errno) ?? systemError(errno, 'splice').code;
}
