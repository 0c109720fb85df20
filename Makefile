# The single entry point.  Every target installs what it needs first.
.PHONY: test demo bench build clean

test:           ## build, run every test, then again under ASan+UBSan
	bash scripts/test.sh

demo:           ## build and show the loggers at work
	bash scripts/demo.sh

bench:          ## run the benchmarks (prints the README table's numbers)
	bash scripts/bench.sh

build:          ## build the extension in place (-Werror)
	bash -c 'source scripts/setup_env.sh'

clean:
	rm -rf build .venv querybook_eventlog/*.so build-ext.log
