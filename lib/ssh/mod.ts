/**
 * The ssh client: argv building, running `ssh`, known_hosts, ControlMaster
 * sockets, client keys and the `--init` runner.
 *
 * @module
 */

export * from "./args.ts";
export * from "./control.ts";
export * from "./host_key.ts";
export * from "./init_script.ts";
export * from "./keys.ts";
export * from "./known_hosts.ts";
export * from "./proxy_command.ts";
