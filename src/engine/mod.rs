//! The only code that talks to the Docker engine (bollard): build, run, exec, tag, push, inspect.
