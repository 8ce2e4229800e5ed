/** Local enforcement in the kernel: portsnare's own nftables table `inet portsnare`. */
export type Availability = { ok: true } | { ok: false; why: string };

export class NftEnforcer {
  static async available(): Promise<Availability> {
    return Promise.resolve({ ok: false, why: 'not implemented yet' });
  }

  async ensure(): Promise<void> {
    throw new Error('not implemented yet');
  }

  async block(_target: string, _expiresAt: number): Promise<void> {
    throw new Error('not implemented yet');
  }

  async unblock(_target: string): Promise<void> {
    throw new Error('not implemented yet');
  }

  async list(): Promise<Array<{ target: string; expiresAt: number }>> {
    return Promise.resolve([]);
  }

  async destroy(): Promise<void> {
    throw new Error('not implemented yet');
  }
}
