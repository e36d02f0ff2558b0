"""One-line errors for bad input, and the wrapper every entry point runs under."""
import sys


class UserError(Exception):
    """Bad input the user can fix: the message names the file and the fix."""


def run_main(main):
    """Run ``main()``; a UserError becomes one ``error: ...`` line on stderr and exit status 2."""
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
