from web_staff import staff

__all__ = ["staff"]
