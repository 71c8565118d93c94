from opendms.cli import main

main()
