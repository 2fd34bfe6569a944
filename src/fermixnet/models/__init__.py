"""fermixnet.models"""
