"""Reader pages: the front page and the article page."""
from flask import Blueprint

bp = Blueprint("reader", __name__)
