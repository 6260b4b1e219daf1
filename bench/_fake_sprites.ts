/**
 * The fake Sprites API as its own process, for bench/mesh.ts: the proxied
 * member's WebSocket relay then does not share an event loop with the bench's
 * readers. Prints `{"url","token"}` on stdout, bridges every sprite's proxy to
 * `host:port` given as arguments, and exits when stdin closes.
 *
 * ```sh
 * deno run -A bench/_fake_sprites.ts 127.77.0.2 22
 * ```
 *
 * @module
 */
import { startFakeSprites } from "../tests/fakes/sprites.ts";

const [hostname, port] = Deno.args;
const fake = startFakeSprites({ bridge: () => ({ hostname, port: Number(port) }) });
console.log(JSON.stringify({ url: fake.url, token: fake.token }));
for await (const _ of Deno.stdin.readable) { /* until the bench closes stdin */ }
await fake.close();
