"""The model server: predictions of the production model over HTTP, a production service of its own."""

from serving.server import main

main()
