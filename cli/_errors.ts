/**
 * Errors the CLI reports, with Docker's exit statuses: 125 when denobox itself fails, 126 when
 * the command cannot be executed, 127 when it is not found.
 * @module
 */

/** Exit statuses shared with Docker and Podman. */
export const Exit = {
  /** denobox itself failed (bad flag, missing container, kernel refusal). */
  FAILED: 125,
  /** The command was found but could not be executed (permission, format). */
  CANNOT_EXECUTE: 126,
  /** The command was not found. */
  NOT_FOUND: 127,
} as const;

/** An error that the CLI prints as `Error: <message>` and exits with `exitCode`. */
export class CliError extends Error {
  override name = "CliError";
  /** The process exit status. */
  exitCode: number;
  constructor(
    message: string,
    exitCode: number = Exit.FAILED,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
