/**
 * Waking tunnels when their ControlMaster socket appears, instead of every
 * tunnel polling `lstat` every few milliseconds: one file-system watch over
 * the socket directories of a mesh. A poll stays as the safety net (a
 * watcher can miss nothing it was started before, but it may fail to start,
 * e.g. when the inotify instance limit is reached).
 *
 * @module
 */

/** A watch over the directories of a mesh's control sockets. */
export interface SocketWatch {
  /**
   * Resolves on the next change of `path` after this call (register it
   * before checking whether the socket exists, so no change is missed).
   */
  next(path: string): Promise<void>;
  /** Stop watching; pending `next` promises resolve. */
  close(): void;
}

/**
 * Watch `dirs` (which must exist) for new entries; `undefined` when the
 * platform's watcher cannot be started (callers then poll).
 *
 * @example
 * ```ts
 * import { watchSockets } from "./socket_watch.ts";
 * const dir = await Deno.makeTempDir();
 * const watch = watchSockets([dir]);
 * const woken = watch?.next(`${dir}/cbx-0123456789ab`);
 * await Deno.writeTextFile(`${dir}/cbx-0123456789ab`, "");
 * await woken;
 * watch?.close();
 * ```
 */
export function watchSockets(dirs: readonly string[]): SocketWatch | undefined {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs([...new Set(dirs)], { recursive: false });
  } catch {
    return undefined;
  }
  const waiting = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const wake = (path: string) => {
    const w = waiting.get(path);
    if (!w) return;
    waiting.delete(path);
    w.resolve();
  };
  const wakeAll = () => [...waiting.keys()].forEach(wake);
  (async () => {
    try {
      for await (const event of watcher) event.paths.forEach(wake);
    } catch { /* closed */ }
    wakeAll();
  })();
  return {
    next(path) {
      let w = waiting.get(path);
      if (!w) {
        const { promise, resolve } = Promise.withResolvers<void>();
        w = { promise, resolve };
        waiting.set(path, w);
      }
      return w.promise;
    },
    close() {
      try {
        watcher.close();
      } catch { /* closed */ }
      wakeAll();
    },
  };
}
