"""fermixnet.engine"""
