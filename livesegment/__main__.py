from livesegment.cli import main

main()
