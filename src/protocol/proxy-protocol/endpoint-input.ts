import { canonicalIp, type Family } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';

/** An address and port to encode; any spelling canonicalIp accepts (Node's socket fields work). */
export interface IpPort {
  readonly address: string;
  readonly port: number;
}

/** The canonical form of an encoder input, or SLUICE_ERR_ADDRESS_INVALID. */
export function canonicalInput(e: IpPort, role: string): { address: string; port: number; family: Family } {
  const ip = canonicalIp(e.address);
  if (ip === undefined) throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `${role} "${e.address}" is not an IP address`);
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) {
    throw new SluiceError('SLUICE_ERR_ADDRESS_INVALID', `${role} port ${e.port} is out of range (0-65535)`);
  }
  return { address: ip.address, port: e.port, family: ip.family };
}
