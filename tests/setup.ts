/**
 * Test set-up, idempotent: installs the Debian packages the tests use where they are missing
 * and builds the busybox test rootfs. Run by `deno task test` before the tests; safe to run
 * again. Without root or apt-get it says what is missing and goes on (the tests that need a
 * missing piece then fail, naming it).
 */
import { ensurePackages, ensureRootfs, TEST_PACKAGES } from "./_helpers.ts";

const missing = await ensurePackages(TEST_PACKAGES);
if (missing.length > 0) {
  console.error(
    `tests/setup: could not install ${
      missing.join(", ")
    } (needs root and apt-get); tests that use them will fail`,
  );
}
const rootfs = await ensureRootfs();
console.error(`tests/setup: busybox rootfs at ${rootfs}`);
