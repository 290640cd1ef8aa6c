from seqattn.cli.main import main

main()
