"""``python -m asl.train`` ≡ ``asl-train``."""

from asl.cli.train import main

if __name__ == "__main__":
    main()
