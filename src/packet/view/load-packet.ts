// The packet as the viewer shows it: checked as `verify --packet` checks it, with a row kept
// for each receipt the chain accepted.
import type { CryptoBackend } from '../../receipts/index.js';
import { checkPacket, type CheckedPacket, type CheckOptions } from '../check/check-packet.js';
import { packetVerdict, type PacketVerdict } from '../check/packet-checks.js';
import { receiptRow, type ReceiptRow } from './receipt-rows.js';

export interface PacketView extends CheckedPacket {
  /** One per receipt the chain accepted, in order (up to a break, if it broke). */
  readonly rows: readonly ReceiptRow[];
  /** The packet's verdict, as `verify --packet` gives it: the chain's, unless a file disagrees. */
  readonly verdict: PacketVerdict;
}

export async function loadPacketView(
  dir: string,
  backend: CryptoBackend,
  pinnedKeys: readonly string[],
  options: Omit<CheckOptions, 'onAccepted'> = {},
): Promise<PacketView> {
  const rows: ReceiptRow[] = [];
  const checked = await checkPacket(dir, backend, pinnedKeys, {
    ...options,
    onAccepted: (receipt, encoded, hash) => rows.push(receiptRow(receipt, encoded, hash)),
  });
  return { ...checked, rows, verdict: packetVerdict(checked.judgement, checked.checks) };
}
