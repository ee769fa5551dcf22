/**
 * Images: a content-addressed layer store, import/export (OCI layouts, `docker save`),
 * hostile-archive-safe layer unpacking, overlayfs root filesystems, a registry client (OCI
 * distribution API), commit and build.
 *
 * @example Pull, run from, commit
 * ```ts ignore
 * import { commit, ImageStore, mountRootfs, pull } from "denobox/image";
 * const store = await ImageStore.open();
 * const img = await pull(store, "127.0.0.1:5000/busybox:latest");
 * await using rootfs = await mountRootfs(img, "/tmp/ctr1");
 * await Deno.writeTextFile(`${rootfs.path}/hello`, "hi\n");
 * await commit(rootfs, { tag: "busybox:hello" });
 * ```
 * @module
 */
export * from "./tar.ts";
export {
  applyLayer,
  type ApplyOptions,
  type ApplyResult,
  type ByteSource,
  type IdMapEntry,
  type IdMapping,
  LayerError,
} from "./apply.ts";
export * from "./types.ts";
export * from "./reference.ts";
export * from "./platform.ts";
export * from "./store.ts";
export * from "./diff.ts";
export * from "./rootfs.ts";
export {
  commit,
  type CommitOptions,
  type ConfigChanges,
  importTree,
} from "./commit.ts";
export * from "./layout.ts";
export * from "./recipe.ts";
export {
  build,
  type BuildOptions,
  type BuildResult,
  type BuildStepResult,
} from "./build.ts";
export * from "./registry.ts";
export type { ProgressEvent, ProgressOption } from "./_progress.ts";
