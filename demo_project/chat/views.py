"""Pages of the demo chat room: the room (login required) and a form that signs a guest in."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

ROOM = "chat:lobby"


class GuestForm(forms.Form):
    """A name for a throwaway demo user."""

    name = forms.SlugField(max_length=30, label="Your name")

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError("That name is taken; pick another.")
        return name


@login_required
def room(request: HttpRequest) -> HttpResponse:
    """The chat room."""
    return render(request, "demo/chat.html", {"room": ROOM})


def join(request: HttpRequest) -> HttpResponse:
    """Create a throwaway user (no password) with the given name and sign it in."""
    next_url = request.POST.get("next") or request.GET.get("next") or "/chat/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "/chat/"
    form = GuestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = get_user_model().objects.create_user(username=form.cleaned_data["name"])
        user.set_unusable_password()
        user.save(update_fields=["password"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url)
    return render(request, "demo/chat_join.html", {"form": form, "next": next_url})
