/** The Dockerfile subset reader and the recipe API (pure, no root). */
import { parseDockerfile, Recipe } from "../../image/recipe.ts";
import { assertEquals, assertThrows } from "../_helpers.ts";

Deno.test("dockerfile: instructions, continuations, exec and shell forms, ENV substitution", () => {
  const r = parseDockerfile(`
# comment
FROM 127.0.0.1:5000/busybox:latest AS base
ENV APP=/srv/app GREETING="hello world"
ENV MODE prod
WORKDIR $APP
COPY --chown=1000:1000 a.txt b/ \${APP}/
RUN echo "$GREETING" > /greeting && \\
    # inner comment line
    touch /done
RUN ["/bin/touch", "/exec-form"]
USER 1000:1000
LABEL org.example.v="1.0" team=tools
ENTRYPOINT ["/bin/sh", "-c"]
cmd echo hi
`);
  assertEquals(r.steps, [
    { kind: "from", ref: "127.0.0.1:5000/busybox:latest" },
    { kind: "env", env: { APP: "/srv/app", GREETING: "hello world" } },
    { kind: "env", env: { MODE: "prod" } },
    { kind: "workdir", path: "/srv/app" },
    {
      kind: "copy",
      sources: ["a.txt", "b/"],
      dest: "/srv/app/",
      chown: { uid: 1000, gid: 1000 },
    },
    {
      kind: "run",
      argv: ["/bin/sh", "-c", 'echo "$GREETING" > /greeting &&  touch /done'],
      text: 'echo "$GREETING" > /greeting &&  touch /done',
    },
    {
      kind: "run",
      argv: ["/bin/touch", "/exec-form"],
      text: '["/bin/touch","/exec-form"]',
    },
    { kind: "user", user: "1000:1000" },
    { kind: "label", labels: { "org.example.v": "1.0", team: "tools" } },
    { kind: "entrypoint", argv: ["/bin/sh", "-c"] },
    { kind: "cmd", argv: ["/bin/sh", "-c", "echo hi"] },
  ]);
});

Deno.test("dockerfile: unsupported or misplaced instructions name their line", () => {
  assertThrows(
    () => parseDockerfile("FROM a\nADD x /y\n"),
    SyntaxError,
    "line 2 (ADD): unsupported",
  );
  assertThrows(() => parseDockerfile("RUN true\n"), SyntaxError, "FROM");
  assertThrows(
    () => parseDockerfile("FROM a\nFROM b\n"),
    SyntaxError,
    "multi-stage",
  );
  assertThrows(
    () => parseDockerfile("FROM a\nCOPY --from=x a b\n"),
    SyntaxError,
    "--from=x",
  );
  assertThrows(() => parseDockerfile(""), SyntaxError, "no FROM");
});

Deno.test("recipe: chained calls and argument checks", () => {
  const r = new Recipe().from("bb").run(["true"]).copy("a", "/b").env({
    A: "1",
  }).workdir("/w")
    .cmd(["x"]).entrypoint(["y"]).user("0").label("k", "v");
  assertEquals(r.steps.map((s) => s.kind), [
    "from",
    "run",
    "copy",
    "env",
    "workdir",
    "cmd",
    "entrypoint",
    "user",
    "label",
  ]);
  assertThrows(() => new Recipe().from("bb").from("cc"), TypeError);
  assertThrows(() => new Recipe().from("bb").run([]), TypeError);
  assertThrows(() => new Recipe().from("bb").env("A=B", "c"), TypeError);
  assertThrows(() => new Recipe().from("Bad Name"), TypeError);
});
