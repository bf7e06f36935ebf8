from npaccel.cli import main

main()
