"""tunnels"""
