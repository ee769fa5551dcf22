/**
 * A small HTTP proxy in front of the test registry, on 127.0.0.1, to put the client through
 * what the plain registry does not do: basic auth, bearer tokens from a realm, and a blob
 * download that breaks halfway (to prove resumption). It records every request it sees.
 */

/** What the proxy adds. */
export interface ProxyOptions {
  /** `"basic"`: require these credentials; `"bearer"`: require a token from /token. */
  auth?: "basic" | "bearer";
  /** Credentials the proxy accepts (basic, and at the token endpoint). */
  user?: string;
  /** Password for `user`. */
  password?: string;
  /** Cut the first full download of each blob after half its bytes. */
  breakBlobs?: boolean;
}

/** A running proxy. */
export interface TestProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  addr: string;
  /** Requests seen: method, path, selected headers. */
  log: {
    method: string;
    path: string;
    range: string | null;
    accept: string | null;
    auth: string | null;
  }[];
}

const TOKEN = "denobox-test-token";

/** Starts a proxy to `upstream` (`127.0.0.1:PORT`). */
export function startProxy(
  upstream: string,
  options: ProxyOptions = {},
): Promise<TestProxy> {
  const log: TestProxy["log"] = [];
  const broken = new Set<string>();
  const basic = `Basic ${
    btoa(`${options.user ?? ""}:${options.password ?? ""}`)
  }`;
  let addr = "";
  const ac = new AbortController();
  const { promise: ready, resolve } = Promise.withResolvers<void>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: ({ port }) => {
      addr = `127.0.0.1:${port}`;
      resolve();
    },
  }, async (req) => {
    const url = new URL(req.url);
    const auth = req.headers.get("authorization");
    log.push({
      method: req.method,
      path: url.pathname + url.search,
      range: req.headers.get("range"),
      accept: req.headers.get("accept"),
      auth,
    });
    if (url.pathname === "/token") {
      if (options.user !== undefined && auth !== basic) {
        return new Response("bad credentials", { status: 401 });
      }
      return Response.json({ token: TOKEN, expires_in: 300 });
    }
    if (options.auth === "basic" && auth !== basic) {
      return new Response(
        JSON.stringify({
          errors: [{ code: "UNAUTHORIZED", message: "login" }],
        }),
        {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="denobox-test"' },
        },
      );
    }
    if (options.auth === "bearer" && auth !== `Bearer ${TOKEN}`) {
      const repo =
        /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1] ?? "";
      return new Response(
        JSON.stringify({
          errors: [{ code: "UNAUTHORIZED", message: "token" }],
        }),
        {
          status: 401,
          headers: {
            "www-authenticate":
              `Bearer realm="http://${addr}/token",service="denobox-test",scope="repository:${repo}:pull"`,
          },
        },
      );
    }
    const headers = new Headers(req.headers);
    headers.delete("authorization");
    headers.set("host", upstream);
    const res = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      ...(req.body ? { body: await req.arrayBuffer() } : {}),
      redirect: "manual",
    });
    const out = new Headers(res.headers);
    const loc = out.get("location");
    if (loc) {
      out.set("location", loc.replace(`http://${upstream}`, `http://${addr}`));
    }
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)?.[1];
    if (
      options.breakBlobs && blob && req.method === "GET" &&
      res.status === 200 &&
      !req.headers.get("range") && !broken.has(blob)
    ) {
      broken.add(blob);
      const all = new Uint8Array(await res.arrayBuffer());
      const half = all.subarray(0, Math.floor(all.length / 2));
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(half);
          setTimeout(
            () => c.error(new Error("connection cut by the test proxy")),
            20,
          );
        },
      });
      return new Response(body, { status: 200, headers: out });
    }
    return new Response(res.body, { status: res.status, headers: out });
  });
  return ready.then(() => ({
    addr,
    log,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  }));
}
