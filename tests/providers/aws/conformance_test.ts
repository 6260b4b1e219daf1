/** AWS against the shared provider conformance suite (fake EC2 Query API). */
import { createAwsProvider } from "../../../providers/aws/provider.ts";
import { startFakeAws } from "../../fakes/aws.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_SECRET = "aws-wrong-secret-do-not-echo";

runProviderConformance({
  name: "aws",
  start: (o) => {
    const fake = startFakeAws({ maxPageSize: o.pageSize ?? 1000 });
    const sleeps = sleepRecorder();
    const provider = createAwsProvider({
      home: "/tmp/cbx-conformance-aws",
      env: envOf({
        ...fake.env,
        ...(o.credentials === "bad" ? { AWS_SECRET_ACCESS_KEY: BAD_SECRET } : {}),
      }),
      // A fixed source block: no what-is-my-IP call leaves this machine.
      config: { sshCidrs: ["198.51.100.0/24"] },
      fetch,
      log: () => {},
    }, {
      waitForSsh: sshRecorder().waitForSsh,
      pollIntervalMs: 1,
      sleep: sleeps.sleep,
      readFile: () => Promise.resolve(undefined),
    });
    const instance = (id: string) => {
      const i = fake.instances.get(id);
      if (!i) throw new Error(`the fake has no instance ${id}`);
      return i;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [
        ...[...fake.instances.values()].filter((i) => i.state !== "terminated").map((i) => i.id),
        ...[...fake.keyPairs.values()].map((k) => k.name),
        ...[...fake.securityGroups.values()].filter((g) => g.tags.crabbox === "true").map((g) =>
          g.name
        ),
      ],
      handedOut: (l) => ({ host: instance(l.providerId).ipv4 ?? "", port: 22 }),
      delivered: (l) => {
        const i = instance(l.providerId);
        return { userData: i.userData, publicKeys: i.launchPublicKey ? [i.launchPublicKey] : [] };
      },
      listPages: () => fake.requests.filter((r) => r.action === "DescribeInstances").length,
      credentialsVariable: "AWS_SECRET_ACCESS_KEY",
      badSecret: BAD_SECRET,
      // EC2 throttles with 503 RequestLimitExceeded and no retry header.
      rateLimitNext: () =>
        fake.inject({
          match: "DescribeInstances",
          status: 503,
          code: "RequestLimitExceeded",
          message: "Request limit exceeded.",
        }),
      capacityNext: () => {
        const words = "We currently do not have sufficient t3.small capacity";
        fake.inject({
          match: "RunInstances",
          status: 500,
          code: "InsufficientInstanceCapacity",
          message: `${words} in the Availability Zone you requested (eu-central-1a).`,
        });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({
          match: "RunInstances",
          status: 400,
          code: "InvalidParameterValue",
          message: "Invalid value for BlockDeviceMapping",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
