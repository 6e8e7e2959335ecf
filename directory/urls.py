"""The public directory of places that take cheques."""

from django.urls import path

from . import views

app_name = "directory"

urlpatterns = [
    path("ou-utiliser/", views.directory, name="search"),
]
