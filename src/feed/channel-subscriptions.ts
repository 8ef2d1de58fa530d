/**
 * The Redis channels an instance listens on, one per watched id (`<prefix><id>`): subscribed when
 * the first local client watches the id, unsubscribed when the last one leaves, and subscribed
 * again after every reconnect (subscriptions asked for while Redis was away failed). `confirmed`
 * tells whether Redis acknowledged the SUBSCRIBE: a snapshot reads the window only after that, so
 * whatever the read misses arrives on the channel.
 */
import type { FeedBus } from '../redis/index.js';
import type { Logger } from '../lib/logger.js';

export class ChannelSubscriptions {
  /** id → its SUBSCRIBE, settled once Redis confirmed it (true) or failed (false). */
  private readonly channels = new Map<string, Promise<boolean>>();

  constructor(
    private readonly prefix: string,
    private readonly deps: { bus: FeedBus | undefined; log: Logger },
  ) {}

  join(id: string): void {
    if (this.deps.bus) this.channels.set(id, this.subscribe(id));
  }

  leave(id: string): void {
    this.channels.delete(id);
    this.deps.bus?.unsubscribe(`${this.prefix}${id}`).catch(() => undefined);
  }

  /** Subscribes again to every channel (Redis connected again). */
  renew(ids: Iterable<string>): void {
    for (const id of ids) this.join(id);
  }

  /** Whether Redis confirmed the channel of `id` (false without Redis or when it failed). */
  async confirmed(id: string): Promise<boolean> {
    return (await this.channels.get(id)) ?? false;
  }

  private subscribe(id: string): Promise<boolean> {
    return this.deps.bus!.subscribe(`${this.prefix}${id}`).then(
      () => true,
      (error: unknown) => {
        this.deps.log.debug({ err: error }, 'redis subscribe failed');
        return false;
      },
    );
  }
}
