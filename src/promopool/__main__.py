from promopool.cli import main

main()
