"""One module per page of the book, named as its page in book/pages/: what that page computes and shows."""
