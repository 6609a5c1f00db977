from scripts.stack.cli import main

main()
