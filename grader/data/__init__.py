"""The course's datasets: raw files in their original formats, parsed once into cached arrays.

`registry` names them and is cheap to import (as is `errors`); `mnist` and `har` parse; `cache`
keeps the arrays; `fetch` is the only module that opens network connections.
"""
