import sys

from grader.child.job import main

sys.exit(main(sys.argv[1:]))
