/**
 * The terminal side of a container's pty: this terminal's size, and following its changes.
 * @module
 */

/** This terminal's size, or 24x80 when stdout is not a terminal. */
export function terminalSize(): { rows: number; cols: number } {
  try {
    const { rows, columns } = Deno.consoleSize();
    return { rows, cols: columns };
  } catch {
    return { rows: 24, cols: 80 };
  }
}

/**
 * Resizes `pty` whenever this terminal is resized (SIGWINCH); returns the function that
 * stops following.
 */
export function followTerminalSize(
  pty: { resize(rows: number, cols: number): void },
): () => void {
  const onWinch = () => {
    const s = terminalSize();
    try {
      pty.resize(s.rows, s.cols);
    } catch { /* exited */ }
  };
  Deno.addSignalListener("SIGWINCH", onWinch);
  return () => Deno.removeSignalListener("SIGWINCH", onWinch);
}
