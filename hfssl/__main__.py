import sys

from hfssl.cli.main import main

sys.exit(main())
